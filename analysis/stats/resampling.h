#pragma once
// Seeded randomness for the statistics that must be reproducible and mergeable: every random
// choice is a hash of (seed, stream, index), never a running generator, so shards processed
// apart (or in another order) draw exactly what one pass over the whole corpus draws.
//   * Poisson(1) bootstrap weights per (document, replicate) (docs/routing-metrics.md §4, item 4:
//     "Poisson-bootstrap confidence intervals on every metric");
//   * a pseudo-random permutation of document indices per permutation replicate, for the
//     permutation test over document domain labels (§2.4, "Recommended additions");
//   * percentile intervals over replicate values.
#include <cstdint>
#include <span>
#include <vector>

namespace moe {

// splitmix64's finalizer.
uint64_t MixHash(uint64_t x);
// A hash of three words, well mixed.
uint64_t MixHash3(uint64_t a, uint64_t b, uint64_t c);
// A double in [0, 1) from 53 bits of a hash.
double HashUnit(uint64_t h);

// Poisson(1) weight of document `doc` in bootstrap replicate `replicate` (0, 1, 2, ... with
// probabilities e^-1/k!).
int PoissonWeight(uint64_t seed, int64_t doc, int replicate);

// A bijection of [0, n) chosen by (seed, round): an 8-round Feistel network on the smallest
// power-of-four domain covering n (at least 2^12, so each half has 6 bits and the rounds mix
// well even for a few documents), with cycle walking. Apply(i) for i in [0, n) is a
// pseudo-random permutation; it holds no table, so memory does not grow with n.
class HashPermutation {
 public:
  HashPermutation(int64_t n, uint64_t seed, uint64_t round);
  int64_t Apply(int64_t i) const;

 private:
  uint64_t Round(uint64_t half, int r) const;
  int64_t n_;
  int half_bits_;
  uint64_t mask_;
  static constexpr int kRounds = 8, kMinBits = 12;
  uint64_t keys_[kRounds];
};

// The [lower, upper] percentile interval of `values` at `level` (e.g. 0.95: the 2.5% and 97.5%
// quantiles, linear interpolation between order statistics as numpy's default). NaNs are left
// out; an empty input gives NaNs. `values` is reordered.
std::pair<double, double> PercentileInterval(std::span<double> values, double level);

}  // namespace moe
