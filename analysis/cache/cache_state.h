#pragma once
// The contents of one layer's expert cache under a replacement policy (expert_cache.h): which
// experts are resident and what the policy's victim rule needs to know about them. The plain
// policies (SimulateCache) and the LRU cache behind the prefetch policies (prefetch_cache.h)
// both serve their requests through it.
#include <cstdint>
#include <limits>
#include <vector>

#include "analysis/cache/expert_cache.h"

namespace moe {

class ExpertCacheState {
 public:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  // `policy` chooses the victim: LRU, LFU or Belady (a prefetch policy evicts as LRU does).
  ExpertCacheState(int experts, int capacity, CachePolicy policy);

  bool Has(int16_t e) const { return cached_[static_cast<size_t>(e)] != 0; }
  // Uses e now: when it is not cached, inserts it, evicting the policy's victim from a full
  // cache. `next_use` is the position of e's next request (only Belady reads it).
  void Use(int16_t e, int64_t next_use = kNever);
  // Empties the cache and forgets the request counts (a cold start).
  void Clear();

 private:
  size_t Victim() const;  // index into resident_

  CachePolicy policy_;
  int capacity_;
  int64_t clock_ = 0;
  // Per expert: cached?, last use (clock), uses since the last Clear, next request.
  std::vector<uint8_t> cached_;
  std::vector<int64_t> last_, count_, upcoming_;
  std::vector<int16_t> resident_;  // the cached experts
};

}  // namespace moe
