// core/vocab_math.h against a brute force in long double: log-sum-exp, NLL, argmax and KL of
// random logit rows, extreme values included, at vocabulary sizes that are not multiples of the
// 16-lane step. Stated tolerances: NLL and log-sum-exp within 1e-6 relative (the fp32
// exponentials are within 2 ulp, ~2.4e-7); KL within 1e-6 relative plus 2e-7 absolute (the
// log-sum-exp error of the two rows); argmax exact (lowest index on ties).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/linear.h"
#include "core/vocab_math.h"

using namespace moe;

namespace {

struct Reference {
  long double lse = 0;
  int32_t argmax = 0;
};

Reference BruteForce(const float* z, int64_t V) {
  Reference r;
  long double m = z[0];
  for (int64_t v = 1; v < V; ++v)
    if (z[v] > m) m = z[v], r.argmax = static_cast<int32_t>(v);
  long double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<long double>(z[v]) - m);
  r.lse = m + std::log(s);
  return r;
}

// KL(b || p), and Σ p_b |log p_b − log p_p|, the scale of its rounding error.
struct KlReference {
  long double kl = 0, l1 = 0;
};

KlReference BruteForceKl(const float* zb, const float* zp, int64_t V) {
  const long double lb = BruteForce(zb, V).lse, lp = BruteForce(zp, V).lse;
  KlReference r;
  for (int64_t v = 0; v < V; ++v) {
    const long double b = zb[v] - lb, p = zp[v] - lp;
    r.kl += std::exp(b) * (b - p);
    r.l1 += std::exp(b) * std::abs(b - p);
  }
  return r;
}

// Rows of one vocabulary size: Gaussian rows at several scales, one dominant logit, a spread
// over ±80 (exp of the gaps under- and overflows fp32 without the shift), very negative tails,
// an all-equal row and a tie for the maximum.
std::vector<float> TestRows(int64_t V, int64_t rows, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-80.0f, 80.0f);
  std::vector<float> z(static_cast<size_t>(rows * V));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = z.data() + r * V;
    const int kind = static_cast<int>(r % 7);
    for (int64_t v = 0; v < V; ++v) {
      switch (kind) {
        case 0:
          row[v] = normal(rng);
          break;
        case 1:
          row[v] = 10.0f * normal(rng);
          break;
        case 2:
          row[v] = 30.0f * normal(rng) - 500.0f;
          break;
        case 3:
          row[v] = uniform(rng);
          break;
        case 4:
          row[v] = v % 3 == 0 ? -1e4f : normal(rng);
          break;
        case 5:
          row[v] = 2.5f;
          break;
        default:
          row[v] = normal(rng);
      }
    }
    if (kind == 6 && V > 2) row[V / 2] = row[V - 1] = 50.0f;  // a tie far above the rest
    if (kind == 0) row[rng() % V] = 40.0f;                    // one certain prediction
  }
  return z;
}

}  // namespace

TEST_CASE("vocab math: log-sum-exp, NLL and argmax match a long-double brute force",
          "[vocab_math]") {
  std::mt19937 rng(7);
  double worst = 0;
  for (int64_t V : {1, 5, 16, 17, 1007, 8191}) {
    const int64_t rows = 21;
    const std::vector<float> z = TestRows(V, rows, rng);
    std::vector<int32_t> targets(rows);
    for (int64_t r = 0; r < rows; ++r)
      targets[r] =
          r % 2 == 0 ? BruteForce(z.data() + r * V, V).argmax : static_cast<int32_t>(rng() % V);
    std::vector<LogitRowStats> stats(rows);
    ScoreLogitRows({.logits = z.data(), .rows = rows, .vocab = V, .targets = targets.data()},
                   stats.data());
    for (int64_t r = 0; r < rows; ++r) {
      INFO("V " << V << " row " << r);
      const float* row = z.data() + r * V;
      const Reference ref = BruteForce(row, V);
      const double nll = static_cast<double>(ref.lse - row[targets[r]]);
      CHECK(stats[r].argmax == ref.argmax);
      CHECK(ArgMax(row, V) == ref.argmax);
      CHECK(std::abs(stats[r].log_sum_exp - static_cast<double>(ref.lse)) <=
            1e-6 * std::max(1.0, std::abs(static_cast<double>(ref.lse))));
      CHECK(stats[r].nll >= 0.0);
      // Plus the double rounding of lse − z at the logits' magnitude (NLL ~1e-14 of a certain
      // prediction).
      CHECK(std::abs(stats[r].nll - nll) <=
            1e-6 * nll + 1e-15 * std::max(1.0, std::abs(stats[r].log_sum_exp)));
      if (nll > 1e-3) worst = std::max(worst, std::abs(stats[r].nll - nll) / nll);
      // The one-row functions are the same computation, to the bit.
      CHECK(-LogProbability(row, V, targets[r]) == stats[r].nll);
      CHECK(LogSumExp(row, V) == stats[r].log_sum_exp);
      CHECK(std::isnan(stats[r].kl));
    }
  }
  WARN("largest relative NLL error (NLL > 1e-3) " << worst);
}

TEST_CASE("vocab math: KL from kept baseline rows matches a long-double brute force",
          "[vocab_math]") {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  double worst_abs = 0, worst_rel = 0;
  for (int64_t V : {3, 33, 1007, 8191}) {
    const int64_t rows = 14;
    const std::vector<float> zb = TestRows(V, rows, rng);
    BaselineLogits base;
    base.Resize(rows, V);
    std::vector<LogitRowStats> base_stats(rows);
    ScoreLogitRows({.logits = zb.data(), .rows = rows, .vocab = V, .keep = &base},
                   base_stats.data());
    REQUIRE(std::equal(zb.begin(), zb.end(), base.Row(0)));
    // Policies: the baseline itself, small and large perturbations, a constant shift (KL 0).
    for (float scale : {0.0f, 1e-3f, 0.1f, 2.0f, -1.0f}) {
      std::vector<float> zp = zb;
      for (float& x : zp) x += scale < 0 ? 3.0f : scale * normal(rng);
      // The block starts at baseline row 2: rows 2..rows-1 of both.
      const int64_t n = rows - 2;
      std::vector<LogitRowStats> stats(n);
      ScoreLogitRows({.logits = zp.data() + 2 * V,
                      .rows = n,
                      .vocab = V,
                      .baseline = &base,
                      .baseline_row = 2},
                     stats.data());
      for (int64_t j = 0; j < n; ++j) {
        INFO("V " << V << " scale " << scale << " row " << j + 2);
        const int64_t r = j + 2;
        CHECK(base.log_sum_exp(r) == base_stats[r].log_sum_exp);
        if (scale == 0.0f) {
          CHECK(stats[j].kl == 0.0);  // identical rows: exactly 0
          continue;
        }
        const KlReference want = BruteForceKl(zb.data() + r * V, zp.data() + r * V, V);
        const double err = std::abs(stats[j].kl - static_cast<double>(want.kl));
        CHECK(stats[j].kl >= 0.0);
        CHECK(err <= 1e-5 * static_cast<double>(want.l1) + 2e-7);
        worst_abs = std::max(worst_abs, err);
        if (want.l1 > 1e-3) worst_rel = std::max(worst_rel, err / static_cast<double>(want.l1));
      }
    }
  }
  WARN("largest KL error " << worst_abs << ", relative to the sum of |log-ratios| (above 1e-3) "
                           << worst_rel);
}

TEST_CASE("vocab math: a row's result does not depend on threads or its address", "[vocab_math]") {
  std::mt19937 rng(3);
  const int64_t V = 1007, rows = 64;  // 64 × 1007 values: enough for the parallel loop
  const std::vector<float> z = TestRows(V, rows, rng);
  std::vector<int32_t> targets(rows);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng() % V);
  BaselineLogits base;
  base.Resize(rows, V);
  std::vector<float> zb = z;
  for (float& x : zb) x += 0.01f * static_cast<float>(rng() % 100);
  ScoreLogitRows({.logits = zb.data(), .rows = rows, .vocab = V, .keep = &base},
                 std::vector<LogitRowStats>(rows).data());
  const int threads_before = NumThreads();
  std::vector<std::vector<LogitRowStats>> runs;
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    std::vector<LogitRowStats> stats(rows);
    ScoreLogitRows({.logits = z.data(),
                    .rows = rows,
                    .vocab = V,
                    .targets = targets.data(),
                    .baseline = &base},
                   stats.data());
    runs.push_back(stats);
  }
  SetNumThreads(threads_before);
  // Each row copied to an address 4 bytes past the start of another buffer.
  std::vector<float> shifted(static_cast<size_t>(V) + 32);
  float* moved = shifted.data() + 1;
  for (int64_t r = 0; r < rows; ++r) {
    INFO("row " << r);
    std::memcpy(moved, z.data() + r * V, static_cast<size_t>(V) * sizeof(float));
    CHECK(runs[0][r].nll == runs[1][r].nll);
    CHECK(runs[0][r].kl == runs[1][r].kl);
    CHECK(runs[0][r].argmax == runs[1][r].argmax);
    CHECK(-LogProbability(moved, V, targets[r]) == runs[0][r].nll);
  }
}
