// moescope cache-sim: expert-cache hit rates (LRU, LFU, Belady, prefetch) per layer and cache size
// from a trace's routing, by domain with intervals over documents; the logic lives in
// analysis/cache/cache_sim.h.
#include <iostream>

#include "analysis/cache/cache_sim.h"
#include "cli/common.h"

namespace moe::cli {
namespace {

struct CacheSimCommandOptions {
  std::string trace, output;
  std::vector<std::string> policies;
  CacheSimOptions sim;
};

}  // namespace

void RegisterCacheSim(CLI::App& app) {
  auto o = std::make_shared<CacheSimCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "cache-sim",
      "Expert-cache hit rates (LRU, LFU, Belady, prefetch) per layer and cache size from a trace");
  cmd->add_option("trace", o->trace, "Trace file (HDF5)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "Folder for cache.csv and cache.json");
  cmd->add_option("--capacities", o->sim.capacities,
                  "Experts cached per layer, e.g. 2,4 (default 1..E for E <= 16, else k, 2k, "
                  "E/8, E/4, E/2)")
      ->delimiter(',');
  cmd->add_option(
         "--policies", o->policies,
         "Policies, e.g. lru,belady (default lru,lfu,belady,prefetch-token,prefetch-layer)")
      ->delimiter(',');
  cmd->add_option("--prefetch-budget", o->sim.prefetch_budget,
                  "Experts a prefetch stage fetches per token at most (default: the top-k)")
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_flag("--cold-start", o->sim.cold_start,
                "Empty the caches at every document (default: warm across the corpus)");
  cmd->add_option("--expert-bytes", o->sim.expert_bytes,
                  "Bytes fetched per miss (default: a bf16 SwiGLU expert of the traced model)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ci-level", o->sim.ci_level, "Level of the intervals over documents")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->add_option("--min-documents", o->sim.min_documents,
                  "Fewest documents a row needs for an interval")
      ->capture_default_str()
      ->check(CLI::Range(2, 1'000'000'000));
  cmd->callback([o] {
    g_exit_code = Guarded([&] {
      for (const std::string& name : o->policies)
        o->sim.policies.push_back(ParseCachePolicy(name, "--policies"));
      const CacheSimReport report = SimulateTraceCache(o->trace, o->sim);
      std::cout << FormatCacheTable(report);
      if (!o->output.empty()) ExportCacheSim(o->output, report);
    });
  });
}

}  // namespace moe::cli
