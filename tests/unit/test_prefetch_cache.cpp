// Prefetching expert caches (analysis/cache/prefetch_cache.h): hand-worked sequences with their
// hits and fetches, the two predictors on hand-made routing (and the layer predictor's causality),
// and, on random sequences, a perfect predictor against plain LRU of the same capacity.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <span>
#include <vector>

#include "analysis/cache/expert_cache.h"
#include "analysis/cache/prefetch_cache.h"
#include "tests/unit/cache_test_util.h"

using namespace moe;
using moe::test::Sequence;

namespace {

std::vector<std::vector<int16_t>> Tokens(const RequestSequence& r) {
  std::vector<std::vector<int16_t>> out;
  for (int64_t t = 0; t < r.tokens(); ++t)
    out.emplace_back(r.expert.begin() + r.token_begin[t], r.expert.begin() + r.token_begin[t + 1]);
  return out;
}

RequestSequence RandomRouting(std::mt19937_64& rng, int tokens, int experts, int k) {
  RequestSequence r;
  std::uniform_int_distribution<int> pick(0, experts - 1);
  for (int t = 0; t < tokens; ++t) {
    std::vector<int16_t> set;
    while (static_cast<int>(set.size()) < k) {
      const int16_t e = static_cast<int16_t>(pick(rng));
      if (std::find(set.begin(), set.end(), e) == set.end()) set.push_back(e);
    }
    r.AddToken(set);
  }
  return r;
}

}  // namespace

TEST_CASE("Prefetching LRU cache on a hand-worked sequence", "[cache]") {
  // Capacity 2 of 4 experts; requests 0 1 2 0, predictions - 1 3 0.
  const RequestSequence r = Sequence({{0}, {1}, {2}, {0}});
  const RequestSequence predicted = Sequence({{}, {1}, {3}, {0}});
  const PrefetchCounts c = SimulatePrefetchCache(r, predicted, 4, 2);
  // t0: 0 missed. t1: 1 prefetched, then hit. t2: 3 prefetched (evicts 0), 2 missed (evicts 1,
  // used before 3). t3: 0 prefetched (evicts 3), then hit.
  CHECK(c.hits == std::vector<int32_t>{0, 1, 0, 1});
  CHECK(c.predicted_hits == std::vector<int32_t>{0, 1, 0, 1});
  CHECK(c.fetched == std::vector<int32_t>{0, 1, 1, 1});
  CHECK(c.fetched_used == std::vector<int32_t>{0, 1, 0, 1});
  // Bytes move 2 demand misses + 3 prefetches = 5 experts; plain LRU moves 4 (all miss).
  CHECK(SimulateCache(r, 4, 2, CachePolicy::kLru) == std::vector<int32_t>{0, 0, 0, 0});
  // A prediction already cached moves nothing; its hit counts as predicted, not as a used fetch.
  const PrefetchCounts again =
      SimulatePrefetchCache(Sequence({{0}, {0}}), Sequence({{}, {0}}), 4, 2);
  CHECK(again.hits == std::vector<int32_t>{0, 1});
  CHECK(again.predicted_hits == std::vector<int32_t>{0, 1});
  CHECK(again.fetched == std::vector<int32_t>{0, 0});
  CHECK(again.fetched_used == std::vector<int32_t>{0, 0});
  // At most `capacity` predictions are prefetched: with capacity 1 only 2 comes in, so 3 misses.
  const PrefetchCounts clipped = SimulatePrefetchCache(Sequence({{3}}), Sequence({{2, 3}}), 4, 1);
  CHECK(clipped.fetched == std::vector<int32_t>{1});
  CHECK(clipped.hits == std::vector<int32_t>{0});
  CHECK_THROWS_WITH(SimulatePrefetchCache(r, Sequence({{}, {}, {}, {5}}), 4, 2),
                    Catch::Contains("predicted expert 5"));
  CHECK_THROWS_WITH(SimulateCache(r, 4, 2, CachePolicy::kPrefetchLayer),
                    Catch::Contains("prefetch-layer"));
  CHECK(ParseCachePolicy("prefetch-token", "--policies") == CachePolicy::kPrefetchToken);
  CHECK_THROWS_WITH(ParseCachePolicy("fifo", "--policies"),
                    Catch::Contains("--policies: unknown cache policy 'fifo'"));
}

TEST_CASE("Previous-token and previous-layer predictions on hand-made routing", "[cache]") {
  const RequestSequence r = Sequence({{0, 1}, {2}, {3, 1}});
  using V = std::vector<std::vector<int16_t>>;
  CHECK(Tokens(PreviousTokenPredictions(r, 1)) == V{{}, {0}, {2}});
  CHECK(Tokens(PreviousTokenPredictions(r, 2)) == V{{}, {0, 1}, {2}});
  const std::vector<uint8_t> reset = {1, 0, 1};
  CHECK(Tokens(PreviousTokenPredictions(r, 2, reset)) == V{{}, {0, 1}, {}});
  // Previous layer 0 0 1 0, this layer 2 3 2 1. t0: nothing counted yet. t1: 0 was followed by
  // 2 once. t2: 1 never seen. t3: 0 was followed by 2 and 3 once each (tie: the lower id first).
  const RequestSequence before = Sequence({{0}, {0}, {1}, {0}});
  const RequestSequence now = Sequence({{2}, {3}, {2}, {1}});
  CHECK(Tokens(PreviousLayerPredictions(before, now, 4, 1)) == V{{}, {2}, {}, {2}});
  CHECK(Tokens(PreviousLayerPredictions(before, now, 4, 2)) == V{{}, {2}, {}, {2, 3}});
  // Causal: a token's prediction does not change when the tokens after it change.
  std::mt19937_64 rng(5);
  const RequestSequence a = RandomRouting(rng, 60, 8, 2), b = RandomRouting(rng, 60, 8, 2);
  RequestSequence b_changed;
  for (int64_t t = 0; t < 60; ++t) {
    std::vector<int16_t> set(b.expert.begin() + b.token_begin[t],
                             b.expert.begin() + b.token_begin[t + 1]);
    if (t >= 30) set = {static_cast<int16_t>(t % 8)};
    b_changed.AddToken(set);
  }
  const auto p = Tokens(PreviousLayerPredictions(a, b, 8, 2));
  const auto q = Tokens(PreviousLayerPredictions(a, b_changed, 8, 2));
  CHECK(std::vector(p.begin(), p.begin() + 31) == std::vector(q.begin(), q.begin() + 31));
}

TEST_CASE("A perfect predictor fetches exactly what plain LRU fetches and never misses",
          "[cache]") {
  // The property: when every token's prediction is its own requests in serving order and the
  // capacity holds a token's requests (C >= k), the prefetch stage touches the experts in the
  // order LRU's requests would, so the cache after each token is LRU's: the prefetches of token
  // t are exactly LRU's misses at t, every request hits (hit rate 1 >= LRU's), the bytes moved
  // equal LRU's, and every prefetch is used. With no predictions the cache is plain LRU, and the
  // previous-token predictor changes nothing (those experts are the most recent already).
  std::mt19937_64 rng(23);
  for (int trial = 0; trial < 40; ++trial) {
    const int E = 4 + trial % 13, k = 1 + trial % 3, tokens = 300;
    const RequestSequence r = RandomRouting(rng, tokens, E, k);
    std::vector<uint8_t> reset(tokens, 0);
    for (int t = 0; t < tokens; t += 37 + trial) reset[static_cast<size_t>(t)] = 1;
    for (int capacity = k; capacity <= E; capacity += 2)
      for (const std::span<const uint8_t> resets :
           {std::span<const uint8_t>(), std::span<const uint8_t>(reset)}) {
        INFO("trial " << trial << " capacity " << capacity << " resets " << resets.size());
        const std::vector<int32_t> lru = SimulateCache(r, E, capacity, CachePolicy::kLru, resets);
        const PrefetchCounts perfect = SimulatePrefetchCache(r, r, E, capacity, resets);
        for (int64_t t = 0; t < tokens; ++t) {
          const int32_t requests = static_cast<int32_t>(r.token_begin[t + 1] - r.token_begin[t]);
          REQUIRE(perfect.hits[t] == requests);
          REQUIRE(perfect.fetched[t] == requests - lru[t]);
          REQUIRE(perfect.fetched_used[t] == perfect.fetched[t]);
        }
        const PrefetchCounts none =
            SimulatePrefetchCache(r, PreviousTokenPredictions(r, 0), E, capacity, resets);
        CHECK(none.hits == lru);
        const PrefetchCounts previous =
            SimulatePrefetchCache(r, PreviousTokenPredictions(r, k, resets), E, capacity, resets);
        CHECK(previous.hits == lru);
        CHECK(previous.fetched == std::vector<int32_t>(tokens, 0));
      }
  }
}
