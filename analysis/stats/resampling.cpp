#include "analysis/stats/resampling.h"

#include <boost/math/distributions/students_t.hpp>

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

double StudentTQuantile(double df, double level) {
  const boost::math::students_t t(df);
  return boost::math::quantile(boost::math::complement(t, (1.0 - level) / 2.0));
}

ClusterInterval ClusterTInterval(double estimate, std::span<const double> replicates,
                                 int64_t clusters, double level) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (std::isnan(estimate) || clusters < 2) return {nan, nan, nan};
  double n = 0, mean = 0, m2 = 0;  // Welford
  for (double v : replicates) {
    if (!std::isfinite(v)) continue;
    n += 1;
    const double delta = v - mean;
    mean += delta / n;
    m2 += delta * (v - mean);
  }
  if (n < 2) return {nan, nan, nan};
  const double g = static_cast<double>(clusters);
  const double se = std::sqrt(m2 / (n - 1)) * std::sqrt(g / (g - 1));
  const double half = StudentTQuantile(g - 1, level) * se;
  return {estimate - half, estimate + half, half / std::sqrt(2 * (n - 1))};
}

void ClusterRatio::Add(double doc_a, double doc_n) {
  if (!(doc_n > 0)) return;
  a += doc_a;
  n += doc_n;
  aa += doc_a * doc_a;
  an += doc_a * doc_n;
  nn += doc_n * doc_n;
  ++groups;
}

double ClusterRatio::Ratio() const {
  return n > 0 ? a / n : std::numeric_limits<double>::quiet_NaN();
}

std::pair<double, double> ClusterRatio::Interval(double level) const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (groups < 2 || !(n > 0)) return {nan, nan};
  const double r = a / n, g = static_cast<double>(groups);
  const double residual = std::max(0.0, aa - 2 * r * an + r * r * nn);  // Σ (a_d − r n_d)²
  const double half = StudentTQuantile(g - 1, level) * std::sqrt(residual * g / (g - 1)) / n;
  return {r - half, r + half};
}

double ClusterRatio::DifferencePValue() const {
  if (groups < 2) return std::numeric_limits<double>::quiet_NaN();
  const double g = static_cast<double>(groups);
  const double delta = a - n, delta_sq = aa - 2 * an + nn;  // Σ δ_d, Σ δ_d²
  // Σ (δ_d − mean δ)²; below the rounding error of the sums it is 0 (every δ_d equal).
  double centered = delta_sq - delta * delta / g;
  if (centered <= 1e-12 * delta_sq) centered = 0;
  const double se = std::sqrt(g / (g - 1) * centered);
  if (!(se > 0)) return std::abs(delta) < 1e-9 ? 1.0 : 0.0;
  const boost::math::students_t t(g - 1);
  return 2 * boost::math::cdf(boost::math::complement(t, std::abs(delta) / se));
}

}  // namespace moe
