#include "analysis/stats/resampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace moe {

uint64_t MixHash(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t MixHash3(uint64_t a, uint64_t b, uint64_t c) {
  return MixHash(MixHash(MixHash(a) ^ b) ^ c);
}

double HashUnit(uint64_t h) {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

int PoissonWeight(uint64_t seed, int64_t doc, int replicate) {
  // Inverse CDF of Poisson(1): P(k) = e^-1 / k!.
  static const double kCdf[] = {0.36787944117144233, 0.73575888234288467, 0.91969860292860584,
                                0.98101184312384626, 0.99634015317265252, 0.99940581518343377,
                                0.99991675885197398, 0.99998975080462258, 0.99999887479870367,
                                0.99999988857582379, 0.99999999001353580, 0.99999999923514598};
  const double u =
      HashUnit(MixHash3(seed, static_cast<uint64_t>(doc), 0x5000000000ull + replicate));
  int k = 0;
  while (k < 12 && u >= kCdf[k]) ++k;
  return k;
}

HashPermutation::HashPermutation(int64_t n, uint64_t seed, uint64_t round) : n_(n) {
  if (n < 1) Fail("permutation", "needs at least one element");
  int bits = kMinBits;
  while ((int64_t{1} << bits) < n) bits += 2;
  half_bits_ = bits / 2;
  mask_ = (uint64_t{1} << half_bits_) - 1;
  for (int r = 0; r < kRounds; ++r) keys_[r] = MixHash3(seed, round, 0x7000 + r);
}

uint64_t HashPermutation::Round(uint64_t half, int r) const {
  return MixHash(half ^ keys_[r]) & mask_;
}

int64_t HashPermutation::Apply(int64_t i) const {
  if (i < 0 || i >= n_) Fail("permutation", "index " + std::to_string(i) + " is out of range");
  uint64_t x = static_cast<uint64_t>(i);
  do {  // cycle walking: a bijection on [0, 4^b) restricted to [0, n) stays a bijection
    uint64_t left = x >> half_bits_, right = x & mask_;
    for (int r = 0; r < kRounds; ++r) {
      const uint64_t next = left ^ Round(right, r);
      left = right;
      right = next;
    }
    x = (left << half_bits_) | right;
  } while (x >= static_cast<uint64_t>(n_));
  return static_cast<int64_t>(x);
}

std::pair<double, double> PercentileInterval(std::span<double> values, double level) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto end = std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); });
  const size_t n = static_cast<size_t>(end - values.begin());
  if (n == 0) return {nan, nan};
  std::sort(values.begin(), end);
  auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(n - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, n - 1);
    return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
  };
  const double tail = (1.0 - level) / 2.0;
  return {quantile(tail), quantile(1.0 - tail)};
}

}  // namespace moe
