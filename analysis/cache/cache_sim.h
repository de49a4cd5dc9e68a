#pragma once
// `moescope cache-sim TRACE`: expert-cache hit rates from a trace's routing (docs/cache-sim.md),
// per layer, policy (expert_cache.h, prefetch_cache.h) and cache size, by domain and over all
// documents, with cluster-t intervals over documents, and the misses and bytes a token moves. The
// CLI calls this; the pieces are tested on hand-made request sequences.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "analysis/cache/expert_cache.h"

namespace moe {

struct CacheSimOptions {
  std::vector<CachePolicy> policies;  // empty: all five, in CachePolicy order
  int prefetch_budget = 0;            // experts a prefetch stage may fetch per token; 0: top-k
  std::vector<int> capacities;        // experts cached per layer; empty: 1..E for E <= 16, else
                                      // k, 2k, E/8, E/4, E/2 (distinct, within 1..E)
  bool cold_start = false;  // empty the caches at every document (default: warm throughout)
  double expert_bytes = 0;  // bytes fetched per miss; 0: 3·hidden·(the layer's mean expert
                            // width)·2, a bf16 SwiGLU expert of the traced model
  double ci_level = 0.95;
  int min_documents = 5;  // fewer documents in a row: no interval
};

struct CacheSimRow {
  int layer = 0, domain = 0;  // domain M = all
  CachePolicy policy = CachePolicy::kLru;
  int capacity = 0;
  double hit_rate = 0, ci_low = 0, ci_high = 0;  // hits / requests; NaN interval when too few docs
  double misses_per_token = 0;                   // requests that missed (demand fetches)
  double bytes_per_token = 0;  // every fetch: misses and, with prefetch, prefetches
  int64_t requests = 0, tokens = 0, docs = 0;
  // Prefetch policies only (NaN otherwise): hits on an expert predicted for the token / requests;
  // prefetched experts the token used / prefetched experts (NaN interval: too few documents or
  // nothing prefetched); prefetches a token moved, and the bytes of those it did not use.
  double predicted_hit_rate = std::numeric_limits<double>::quiet_NaN();
  double prefetch_accuracy = std::numeric_limits<double>::quiet_NaN();
  double accuracy_ci_low = std::numeric_limits<double>::quiet_NaN();
  double accuracy_ci_high = std::numeric_limits<double>::quiet_NaN();
  double prefetches_per_token = std::numeric_limits<double>::quiet_NaN();
  double wasted_bytes_per_token = std::numeric_limits<double>::quiet_NaN();
};

struct CacheSimReport {
  std::string trace;
  int layers = 0, experts = 0, top_k = 0;
  std::vector<std::string> domains;  // M; row M is all
  std::vector<double> expert_bytes;  // [L] bytes per miss used
  CacheSimOptions options;           // defaults filled in (policies, capacities, budget)
  std::vector<CacheSimRow> rows;     // layer, domain, policy, capacity order
};

// Throws Error naming the trace or option at fault (a capacity outside 1..E).
CacheSimReport SimulateTraceCache(const std::filesystem::path& trace,
                                  const CacheSimOptions& options);

// DIR/cache.csv (one row per layer × domain × policy × capacity) and DIR/cache.json.
void ExportCacheSim(const std::filesystem::path& dir, const CacheSimReport& report);

// All domains: per layer and capacity, the hit rate of each policy.
std::string FormatCacheTable(const CacheSimReport& report);

}  // namespace moe
