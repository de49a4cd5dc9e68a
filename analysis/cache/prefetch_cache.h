#pragma once
// Prefetching expert caches (docs/cache-sim.md): before a token's requests at a layer are served,
// a prefetch stage brings the experts a predictor names for that token into the layer's cache
// (fetches that move bytes whether or not the token then uses them); then the requests are
// served as in expert_cache.h. Eviction, in both stages, is LRU. Two causal predictors:
//   previous token  the experts this layer served for the previous token (what LRU already
//                   holds: its hits show how much of LRU's hit rate that set accounts for);
//   previous layer  the experts of this layer that most often followed, in the tokens already
//                   served, the experts the previous layer chose for this same token
//                   (co-occurrence counted online, never from later tokens).
// Pure functions over request sequences, like expert_cache.h.
#include <cstdint>
#include <span>
#include <vector>

#include "analysis/cache/expert_cache.h"

namespace moe {

// Per token, what the prefetch stage and the requests did.
struct PrefetchCounts {
  std::vector<int32_t> hits;            // requests served from the cache (prefetched or not)
  std::vector<int32_t> predicted_hits;  // of those, requests of an expert predicted for the token
  std::vector<int32_t> fetched;         // experts the prefetch stage moved (not yet cached)
  std::vector<int32_t> fetched_used;    // of those, the ones the token then requested
};

// `predictions` lists, per token, the experts to prefetch in order of preference (the same
// token layout as `requests`); the first min(its size, capacity) distinct ones are prefetched.
// A prediction already cached moves nothing but becomes the most recently used. `reset_before`
// as in SimulateCache. With no predictions the hits equal SimulateCache's LRU hits.
PrefetchCounts SimulatePrefetchCache(const RequestSequence& requests,
                                     const RequestSequence& predictions, int experts, int capacity,
                                     std::span<const uint8_t> reset_before = {});

// Token t's prediction: the first `budget` requests of token t - 1 (none for the first token and
// where reset_before[t] starts a document cold).
RequestSequence PreviousTokenPredictions(const RequestSequence& requests, int budget,
                                         std::span<const uint8_t> reset_before = {});

// Token t's prediction at a layer from the previous layer's requests of the same token: the
// `budget` experts b of this layer with the highest Σ_{a requested by t at the previous layer}
// count(a, b), where count(a, b) is the number of tokens before t that requested a at the
// previous layer and b at this one; zero counts are never predicted, ties go to the lower id.
// `previous` and `current` hold the same tokens; experts of both layers are < `experts`.
RequestSequence PreviousLayerPredictions(const RequestSequence& previous,
                                         const RequestSequence& current, int experts, int budget);

}  // namespace moe
