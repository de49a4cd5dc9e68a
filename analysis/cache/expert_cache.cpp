#include "analysis/cache/expert_cache.h"

#include <algorithm>

#include "analysis/cache/cache_state.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr int64_t kNever = ExpertCacheState::kNever;

// For every request position, the position of the next request of the same expert within the
// same cache lifetime (kNever: none). A reset ends every lifetime.
std::vector<int64_t> NextUse(const RequestSequence& r, int experts,
                             std::span<const uint8_t> reset_before) {
  const int64_t P = static_cast<int64_t>(r.expert.size());
  std::vector<int64_t> next(static_cast<size_t>(P), kNever);
  std::vector<int64_t> seen(static_cast<size_t>(experts), kNever);
  for (int64_t t = r.tokens() - 1; t >= 0; --t) {
    for (int64_t p = r.token_begin[t + 1] - 1; p >= r.token_begin[t]; --p) {
      const size_t e = static_cast<size_t>(r.expert[p]);
      next[p] = seen[e];
      seen[e] = p;
    }
    if (!reset_before.empty() && reset_before[t]) std::fill(seen.begin(), seen.end(), kNever);
  }
  return next;
}

}  // namespace

const char* CachePolicyName(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::kLru:
      return "lru";
    case CachePolicy::kLfu:
      return "lfu";
    case CachePolicy::kBelady:
      return "belady";
    case CachePolicy::kPrefetchToken:
      return "prefetch-token";
    case CachePolicy::kPrefetchLayer:
      return "prefetch-layer";
  }
  return "?";
}

CachePolicy ParseCachePolicy(const std::string& name, const std::string& where) {
  for (CachePolicy p : {CachePolicy::kLru, CachePolicy::kLfu, CachePolicy::kBelady,
                        CachePolicy::kPrefetchToken, CachePolicy::kPrefetchLayer})
    if (name == CachePolicyName(p)) return p;
  Fail(where,
       "unknown cache policy '" + name + "' (lru, lfu, belady, prefetch-token or prefetch-layer)");
}

bool IsPrefetchPolicy(CachePolicy policy) {
  return policy == CachePolicy::kPrefetchToken || policy == CachePolicy::kPrefetchLayer;
}

void RequestSequence::AddToken(std::span<const int16_t> experts) {
  for (int16_t e : experts)
    if (e >= 0) expert.push_back(e);
  token_begin.push_back(static_cast<int64_t>(expert.size()));
}

std::vector<int32_t> SimulateCache(const RequestSequence& r, int experts, int capacity,
                                   CachePolicy policy, std::span<const uint8_t> reset_before) {
  if (experts < 1 || capacity < 1)
    Fail("cache simulation", "needs at least one expert and a capacity of at least one");
  if (IsPrefetchPolicy(policy))
    Fail("cache simulation", std::string(CachePolicyName(policy)) +
                                 " has a prefetch stage: SimulatePrefetchCache simulates it");
  if (!reset_before.empty() && static_cast<int64_t>(reset_before.size()) != r.tokens())
    Fail("cache simulation", "reset flags do not match the tokens");
  for (int16_t e : r.expert)
    if (e >= experts)
      Fail("cache simulation",
           "expert " + std::to_string(e) + " is outside 0.." + std::to_string(experts - 1));
  const std::vector<int64_t> next =
      policy == CachePolicy::kBelady ? NextUse(r, experts, reset_before) : std::vector<int64_t>{};
  ExpertCacheState cache(experts, capacity, policy);
  std::vector<int32_t> hits(static_cast<size_t>(r.tokens()), 0);
  for (int64_t t = 0; t < r.tokens(); ++t) {
    if (!reset_before.empty() && reset_before[t]) cache.Clear();
    for (int64_t p = r.token_begin[t]; p < r.token_begin[t + 1]; ++p) {
      const int16_t e = r.expert[p];
      if (cache.Has(e)) ++hits[static_cast<size_t>(t)];
      cache.Use(e, next.empty() ? kNever : next[static_cast<size_t>(p)]);
    }
  }
  return hits;
}

}  // namespace moe
