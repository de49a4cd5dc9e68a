#pragma once
// Expert-cache simulation (docs/cache-sim.md): an offloading engine keeps C of a layer's E experts
// in fast memory and fetches the others when a token needs them. Given the experts each token
// executed at one layer (from a trace), how many requests would a cache of C experts serve,
// under a replacement policy? Requests of one token are served in their stored order (descending
// weight), one after the other; a hit is a request whose expert is already cached.
//   LRU     evict the least recently requested expert;
//   LFU     evict the least often requested so far (ties: the least recently requested);
//   Belady  evict the expert whose next request lies farthest in the future (never again:
//           farthest of all) — the offline optimum (Belady 1966), the bound the others are
//           measured against.
// Pure functions over request sequences: the trace reading and the report are cache_sim.h.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace moe {

// The last two are LRU caches with a prefetch stage (prefetch_cache.h), simulated there.
enum class CachePolicy { kLru, kLfu, kBelady, kPrefetchToken, kPrefetchLayer };
// "lru", "lfu", "belady", "prefetch-token", "prefetch-layer"
const char* CachePolicyName(CachePolicy policy);
// The policy of a name above; throws Error naming `where` (a flag, a file) for any other.
CachePolicy ParseCachePolicy(const std::string& name, const std::string& where);
bool IsPrefetchPolicy(CachePolicy policy);

// One layer's requests: expert ids in serving order; token t's requests are
// [token_begin[t], token_begin[t + 1]).
struct RequestSequence {
  std::vector<int16_t> expert;
  std::vector<int64_t> token_begin = {0};
  int64_t tokens() const { return static_cast<int64_t>(token_begin.size()) - 1; }
  void AddToken(std::span<const int16_t> experts);  // ids < 0 (padding) are skipped
};

// Per token, the number of its requests that hit, for a cache of `capacity` experts (>= 1) of
// `experts` (ids in [0, experts)). `reset_before[t]` empties the cache before token t (a cold
// start per document), or may be empty (the cache stays warm across the whole sequence).
// Prefetch policies are refused (SimulatePrefetchCache).
std::vector<int32_t> SimulateCache(const RequestSequence& requests, int experts, int capacity,
                                   CachePolicy policy, std::span<const uint8_t> reset_before = {});

}  // namespace moe
