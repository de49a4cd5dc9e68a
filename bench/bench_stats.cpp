// moescope_bench_stats: what the statistics' inference costs. One trace, the same run, three
// configurations of `moescope stats` (ComputeStatsReport: both passes, the report with its
// intervals and tests; writing the files is left out):
//   none       no bootstrap, no permutations (the point estimates and the token-controlled pass);
//   format-1   200 bootstrap replicates and 200 permutations (the defaults of stats format 1);
//   default    today's defaults: 1000 replicates and automatic permutations (enough for one
//              Benjamini–Hochberg discovery in the specialization family, 6720 for 336 cells).
// Rounds interleave the three in rotated order; each reports the median seconds and its ratio
// to `format-1` of the same run.
//
//   moescope_bench_stats TRACE.h5 [--rounds R]
// A trace of the bundled sample: `moescope trace --corpus datasets/sample/*.jsonl -o sample.h5
// --record-logits --logit-sample-rate 0.25` (README's worked example).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "analysis/stats/trace_scan.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app("moescope_bench_stats: the cost of intervals and tests in moescope stats");
  std::string trace;
  int rounds = 3;
  app.add_option("trace", trace, "A trace file")->required()->check(CLI::ExistingFile);
  app.add_option("--rounds", rounds, "Rounds (median reported)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    struct Variant {
      const char* name;
      int bootstrap, permutations;
      std::vector<double> seconds;
    };
    std::vector<Variant> variants = {{"none", 0, 0, {}},
                                     {"format-1", 200, 200, {}},
                                     {"default", moe::StatsOptions{}.bootstrap, -1, {}}};
    const moe::TraceSetInfo set = moe::InspectTraces({trace});
    int resolved_permutations = 0;
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < variants.size(); ++i) {
        Variant& v = variants[(i + static_cast<size_t>(r)) % variants.size()];
        moe::StatsOptions o;
        o.bootstrap = v.bootstrap;
        o.permutations = v.permutations;
        const auto start = std::chrono::steady_clock::now();
        const moe::StatsReport report = moe::ComputeStatsReport(set, o);
        v.seconds.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (v.permutations < 0) resolved_permutations = report.options.permutations;
      }
    auto median = [](std::vector<double> s) {
      std::sort(s.begin(), s.end());
      return s[s.size() / 2];
    };
    const double base = median(variants[1].seconds);
    std::printf("stats over %s: %lld documents, %lld tokens, %d rounds\n", trace.c_str(),
                static_cast<long long>(set.documents), static_cast<long long>(set.tokens), rounds);
    std::printf("%-10s %10s %14s %10s %12s\n", "variant", "bootstrap", "permutations", "seconds",
                "vs format-1");
    for (const Variant& v : variants)
      std::printf("%-10s %10d %14d %10.3f %11.2fx\n", v.name, v.bootstrap,
                  v.permutations < 0 ? resolved_permutations : v.permutations, median(v.seconds),
                  median(v.seconds) / base);
    return 0;
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moescope_bench_stats: error: %s\n", e.what());
    return 1;
  }
}
