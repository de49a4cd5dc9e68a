#include "analysis/cache/cache_state.h"

#include <algorithm>

namespace moe {

ExpertCacheState::ExpertCacheState(int experts, int capacity, CachePolicy policy)
    : policy_(IsPrefetchPolicy(policy) ? CachePolicy::kLru : policy),
      capacity_(capacity),
      cached_(static_cast<size_t>(experts), 0),
      last_(static_cast<size_t>(experts), -1),
      count_(static_cast<size_t>(experts), 0),
      upcoming_(static_cast<size_t>(experts), kNever) {}

size_t ExpertCacheState::Victim() const {
  size_t victim = 0;
  for (size_t i = 1; i < resident_.size(); ++i) {
    const size_t a = static_cast<size_t>(resident_[i]), b = static_cast<size_t>(resident_[victim]);
    bool better = false;
    switch (policy_) {
      case CachePolicy::kLfu:
        better = count_[a] < count_[b] || (count_[a] == count_[b] && last_[a] < last_[b]);
        break;
      case CachePolicy::kBelady:
        better =
            upcoming_[a] > upcoming_[b] || (upcoming_[a] == upcoming_[b] && last_[a] < last_[b]);
        break;
      default:  // LRU
        better = last_[a] < last_[b];
        break;
    }
    if (better) victim = i;
  }
  return victim;
}

void ExpertCacheState::Use(int16_t e, int64_t next_use) {
  const size_t ei = static_cast<size_t>(e);
  if (!cached_[ei]) {
    if (static_cast<int>(resident_.size()) == capacity_) {
      const size_t victim = Victim();  // never e itself, which is not cached
      cached_[static_cast<size_t>(resident_[victim])] = 0;
      resident_[victim] = e;
    } else {
      resident_.push_back(e);
    }
    cached_[ei] = 1;
  }
  last_[ei] = clock_++;
  ++count_[ei];
  upcoming_[ei] = next_use;
}

void ExpertCacheState::Clear() {
  for (int16_t e : resident_) cached_[static_cast<size_t>(e)] = 0;
  resident_.clear();
  std::fill(count_.begin(), count_.end(), 0);
}

}  // namespace moe
