#pragma once
// Seeded randomness for the statistics that must be reproducible and mergeable: every random
// choice is a hash of (seed, stream, index), never a running generator, so shards processed
// apart (or in another order) draw exactly what one pass over the whole corpus draws.
//   * Poisson(1) bootstrap weights per (document, replicate) (docs/routing-metrics.md §4, item 4:
//     "Poisson-bootstrap confidence intervals on every metric");
//   * a pseudo-random permutation of document indices per permutation replicate, for the
//     permutation test over document domain labels (§2.4, "Recommended additions");
//   * percentile intervals over replicate values, and cluster-t intervals from their spread.
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

// The two-sided Student-t quantile t_{df, 1 - (1 - level)/2}.
double StudentTQuantile(double df, double level);

// A cluster-t interval over G documents (the clusters) from bootstrap replicates of the
// estimate: estimate ± t_{G-1} · sqrt(G/(G-1)) · sd(replicates). The bootstrap over documents
// gives the cluster-robust standard error; the small-sample factor and the t quantile with G - 1
// degrees of freedom are those of the CR1 cluster-robust interval (Cameron & Miller 2015, §VI),
// which a percentile interval lacks (too narrow with few documents). `mc_error` is the
// Monte-Carlo error of the half-width, half / sqrt(2 (B' - 1)) for B' finite replicates. NaN
// when the estimate is NaN, G < 2 or fewer than 2 replicates are finite.
struct ClusterInterval {
  double low, high, mc_error;
};
ClusterInterval ClusterTInterval(double estimate, std::span<const double> replicates,
                                 int64_t clusters, double level);

// A ratio of sums over documents, r = Σ_d a_d / Σ_d n_d, with its cluster-robust (CR1)
// linearization interval r ± t_{G-1} · sqrt(G/(G-1) · Σ_d (a_d − r n_d)²) / Σ_d n_d. Five sums
// are kept, never the documents; a document enters once (Add) with its own sums. Documents
// with n_d <= 0 are not documents of this ratio and are left out.
struct ClusterRatio {
  double a = 0, n = 0, aa = 0, an = 0, nn = 0;
  int64_t groups = 0;  // G
  void Add(double doc_a, double doc_n);
  double Ratio() const;  // NaN when n = 0
  // [low, high]; NaNs when G < 2.
  std::pair<double, double> Interval(double level) const;
  // Two-sided p-value of Σ_d (a_d − n_d) = 0: t = Σ_d δ_d / sqrt(G/(G−1) Σ_d (δ_d − mean δ)²)
  // with G − 1 degrees of freedom (documents are the units); NaN when G < 2.
  double DifferencePValue() const;
};

}  // namespace moe
