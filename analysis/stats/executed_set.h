#pragma once
// The set of experts one token executed in one layer, as a fixed 256-bit set: the executed-set
// statistics (any-overlap baseline, the shuffled vocabulary baseline) count and compare whole
// sets, and E = 256 is the largest expert count among the families moescope reads (DeepSeek-V3,
// dots1). Models with more experts get no set statistics (kMaxSetExperts).
#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace moe {

inline constexpr int kMaxSetExperts = 256;

struct ExecutedSet {
  std::array<uint64_t, kMaxSetExperts / 64> words{};

  void Insert(int expert) { words[expert >> 6] |= uint64_t{1} << (expert & 63); }
  bool Contains(int expert) const { return (words[expert >> 6] >> (expert & 63)) & 1u; }
  bool Meets(const ExecutedSet& other) const {
    for (size_t i = 0; i < words.size(); ++i)
      if (words[i] & other.words[i]) return true;
    return false;
  }
  auto operator<=>(const ExecutedSet&) const = default;
};

struct ExecutedSetHash {
  size_t operator()(const ExecutedSet& set) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint64_t w : set.words) h = (h ^ w) * 0xff51afd7ed558ccdull + (h >> 29);
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

// How many tokens executed each set (one layer).
using ExecutedSetCounts = std::unordered_map<ExecutedSet, int64_t, ExecutedSetHash>;

}  // namespace moe
