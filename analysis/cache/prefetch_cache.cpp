#include "analysis/cache/prefetch_cache.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "analysis/cache/cache_state.h"
#include "core/error.h"

namespace moe {
namespace {

void CheckIds(const RequestSequence& r, int experts, const char* what) {
  for (int16_t e : r.expert)
    if (e < 0 || e >= experts)
      Fail("cache simulation", std::string(what) + " expert " + std::to_string(e) +
                                   " is outside 0.." + std::to_string(experts - 1));
}

}  // namespace

PrefetchCounts SimulatePrefetchCache(const RequestSequence& r, const RequestSequence& predictions,
                                     int experts, int capacity,
                                     std::span<const uint8_t> reset_before) {
  if (experts < 1 || capacity < 1)
    Fail("cache simulation", "needs at least one expert and a capacity of at least one");
  if (predictions.tokens() != r.tokens())
    Fail("cache simulation", "predictions do not match the tokens");
  if (!reset_before.empty() && static_cast<int64_t>(reset_before.size()) != r.tokens())
    Fail("cache simulation", "reset flags do not match the tokens");
  CheckIds(r, experts, "requested");
  CheckIds(predictions, experts, "predicted");
  const size_t T = static_cast<size_t>(r.tokens());
  PrefetchCounts out{std::vector<int32_t>(T, 0), std::vector<int32_t>(T, 0),
                     std::vector<int32_t>(T, 0), std::vector<int32_t>(T, 0)};
  ExpertCacheState cache(experts, capacity, CachePolicy::kLru);
  // Per expert: predicted for the current token (1), and fetched by its prefetch stage (2).
  std::vector<uint8_t> mark(static_cast<size_t>(experts), 0);
  std::vector<int16_t> marked;
  for (size_t t = 0; t < T; ++t) {
    if (!reset_before.empty() && reset_before[t]) cache.Clear();
    int prefetched = 0;
    for (int64_t p = predictions.token_begin[t];
         p < predictions.token_begin[t + 1] && prefetched < capacity; ++p) {
      const int16_t e = predictions.expert[static_cast<size_t>(p)];
      uint8_t& m = mark[static_cast<size_t>(e)];
      if (m) continue;  // listed twice
      m = cache.Has(e) ? 1 : 2;
      if (m == 2) ++out.fetched[t];
      marked.push_back(e);
      cache.Use(e);
      ++prefetched;
    }
    for (int64_t p = r.token_begin[t]; p < r.token_begin[t + 1]; ++p) {
      const int16_t e = r.expert[static_cast<size_t>(p)];
      uint8_t& m = mark[static_cast<size_t>(e)];
      if (cache.Has(e)) {
        ++out.hits[t];
        if (m) ++out.predicted_hits[t];
      }
      if (m == 2) ++out.fetched_used[t];
      if (m) m = 3;  // a second request of the same expert counts once as used
      cache.Use(e);
    }
    for (int16_t e : marked) mark[static_cast<size_t>(e)] = 0;
    marked.clear();
  }
  return out;
}

RequestSequence PreviousTokenPredictions(const RequestSequence& r, int budget,
                                         std::span<const uint8_t> reset_before) {
  if (!reset_before.empty() && static_cast<int64_t>(reset_before.size()) != r.tokens())
    Fail("cache simulation", "reset flags do not match the tokens");
  RequestSequence out;
  for (int64_t t = 0; t < r.tokens(); ++t) {
    const bool cold = t == 0 || (!reset_before.empty() && reset_before[static_cast<size_t>(t)]);
    const int64_t begin = cold ? 0 : r.token_begin[static_cast<size_t>(t - 1)];
    const int64_t end = cold ? 0 : std::min(r.token_begin[static_cast<size_t>(t)], begin + budget);
    out.AddToken(
        std::span<const int16_t>(r.expert.data() + begin, static_cast<size_t>(end - begin)));
  }
  return out;
}

RequestSequence PreviousLayerPredictions(const RequestSequence& previous,
                                         const RequestSequence& current, int experts, int budget) {
  if (previous.tokens() != current.tokens())
    Fail("cache simulation", "the two layers' requests do not hold the same tokens");
  CheckIds(previous, experts, "previous layer's");
  CheckIds(current, experts, "requested");
  const size_t E = static_cast<size_t>(experts);
  std::vector<int64_t> count(E * E, 0);  // [a at the previous layer][b at this one]
  std::vector<int64_t> score(E);
  std::vector<int16_t> order(E), predicted;
  RequestSequence out;
  for (int64_t t = 0; t < current.tokens(); ++t) {
    const auto before =
        std::span<const int16_t>(previous.expert)
            .subspan(static_cast<size_t>(previous.token_begin[t]),
                     static_cast<size_t>(previous.token_begin[t + 1] - previous.token_begin[t]));
    const auto now =
        std::span<const int16_t>(current.expert)
            .subspan(static_cast<size_t>(current.token_begin[t]),
                     static_cast<size_t>(current.token_begin[t + 1] - current.token_begin[t]));
    // Predict from the tokens before t ...
    std::fill(score.begin(), score.end(), 0);
    for (int16_t a : before)
      for (size_t b = 0; b < E; ++b) score[b] += count[static_cast<size_t>(a) * E + b];
    std::iota(order.begin(), order.end(), int16_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int16_t x, int16_t y) {
      return score[static_cast<size_t>(x)] > score[static_cast<size_t>(y)];
    });
    predicted.clear();
    for (int16_t b : order)
      if (static_cast<int>(predicted.size()) < budget && score[static_cast<size_t>(b)] > 0)
        predicted.push_back(b);
    out.AddToken(predicted);
    // ... then count t itself.
    for (int16_t a : before)
      for (int16_t b : now) ++count[static_cast<size_t>(a) * E + static_cast<size_t>(b)];
  }
  return out;
}

}  // namespace moe
