#pragma once
// Wall-clock timing shared by the benchmarks.
#include <algorithm>
#include <chrono>
#include <vector>

namespace moe::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The median of repeated timings: the middle one, or the mean of the two middle ones for an even
// count; 0 for none.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace moe::bench
