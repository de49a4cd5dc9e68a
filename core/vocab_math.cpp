#include "core/vocab_math.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace moe {
namespace {

// 16 floats a step, one AVX-512 register. Which lane an element takes depends only on its index,
// so sums do not depend on the row's address (Eigen would peel unaligned leading elements).
constexpr int64_t kLanes = 16;
using Lanes = Eigen::Array<float, kLanes, 1>;
using DoubleLanes = Eigen::Array<double, kLanes, 1>;
using ConstLanesMap = Eigen::Map<const Lanes>;

// Lane by lane in index order (Eigen's reductions would also do, but their AVX-512 extracts set
// off GCC 12's false uninitialized warnings).
double SumOf(const DoubleLanes& lanes) {
  double sum = 0.0;
  for (int64_t j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

float MaxOf(const float* z, int64_t n) {
  int64_t i = 0;
  float m = -INFINITY;
  if (n >= kLanes) {
    Lanes best = ConstLanesMap(z);
    for (i = kLanes; i + kLanes <= n; i += kLanes) best = best.max(ConstLanesMap(z + i));
    for (int64_t j = 0; j < kLanes; ++j) m = std::max(m, best[j]);
  }
  for (; i < n; ++i) m = std::max(m, z[i]);
  return m;
}

// First index holding `m`, a step of 16 compares at a time; -1 when none does (NaN logits).
int64_t FirstIndexOf(const float* z, int64_t n, float m) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    bool hit = false;
    for (int64_t j = 0; j < kLanes; ++j) hit |= z[i + j] == m;
    if (hit) break;
  }
  for (; i < n; ++i)
    if (z[i] == m) return i;
  return -1;
}

int32_t ArgMaxGiven(const float* z, int64_t n, float m) {
  const int64_t at = FirstIndexOf(z, n, m);
  return static_cast<int32_t>(at >= 0 ? at : std::max_element(z, z + n) - z);
}

// Σ exp(z − shift): fp32 exponentials, each lane's sum in double.
double SumExpShifted(const float* z, int64_t n, float shift) {
  DoubleLanes acc = DoubleLanes::Zero();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    // Evaluated in float first: a cast of the exp expression would run Eigen's scalar path.
    const Lanes e = (ConstLanesMap(z + i) - shift).exp();
    acc += e.cast<double>();
  }
  double sum = SumOf(acc);
  for (; i < n; ++i) sum += static_cast<double>(std::exp(z[i] - shift));
  return sum;
}

double LogSumExpGiven(const float* z, int64_t n, float m) {
  return static_cast<double>(m) + std::log(SumExpShifted(z, n, m));
}

// KL(b || p) of one row from the baseline's logits and log-sum-exp (see the header).
double KlFrom(const float* zb, double lse_b, const float* zp, double lse_p, int64_t n) {
  const float shift = static_cast<float>(lse_b);
  DoubleLanes weighted = DoubleLanes::Zero(), mass = DoubleLanes::Zero();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const ConstLanesMap b(zb + i), p(zp + i);
    const Lanes pb_float = (b - shift).exp();
    const DoubleLanes pb = pb_float.cast<double>();
    weighted += pb * (b.cast<double>() - p.cast<double>());
    mass += pb;
  }
  double w = SumOf(weighted), s = SumOf(mass);
  for (; i < n; ++i) {
    const double pb = static_cast<double>(std::exp(zb[i] - shift));
    w += pb * (static_cast<double>(zb[i]) - static_cast<double>(zp[i]));
    s += pb;
  }
  return std::max(0.0, w - (lse_b - lse_p) * s);
}

void ScoreRow(const LogitBlock& b, int64_t j, LogitRowStats& out) {
  const float* z = b.logits + j * b.vocab;
  const float m = MaxOf(z, b.vocab);
  out.argmax = ArgMaxGiven(z, b.vocab, m);
  out.log_sum_exp = LogSumExpGiven(z, b.vocab, m);
  if (b.targets != nullptr) out.nll = out.log_sum_exp - static_cast<double>(z[b.targets[j]]);
  if (b.baseline != nullptr) {
    const int64_t r = b.baseline_row + j;
    out.kl = KlFrom(b.baseline->Row(r), b.baseline->log_sum_exp(r), z, out.log_sum_exp, b.vocab);
  }
  if (b.keep != nullptr) {
    const int64_t r = b.keep_row + j;
    std::memcpy(b.keep->Row(r), z, static_cast<size_t>(b.vocab) * sizeof(float));
    b.keep->log_sum_exp(r) = out.log_sum_exp;
  }
}

}  // namespace

double LogSumExp(const float* logits, int64_t vocab) {
  return LogSumExpGiven(logits, vocab, MaxOf(logits, vocab));
}

double LogProbability(const float* logits, int64_t vocab, int32_t target) {
  return static_cast<double>(logits[target]) - LogSumExp(logits, vocab);
}

int32_t ArgMax(const float* logits, int64_t vocab) {
  return ArgMaxGiven(logits, vocab, MaxOf(logits, vocab));
}

void BaselineLogits::Resize(int64_t rows, int64_t vocab) {
  rows_ = rows;
  vocab_ = vocab;
  logits_ = buffer_.Get(static_cast<size_t>(rows * vocab));
  log_sum_exp_.resize(static_cast<size_t>(rows));
}

void ScoreLogitRows(const LogitBlock& b, LogitRowStats* out) {
  if (b.baseline != nullptr && (b.baseline->vocab() != b.vocab || b.baseline_row < 0 ||
                                b.baseline_row + b.rows > b.baseline->rows()))
    Fail("logits", "internal error: the baseline rows do not cover the block");
  if (b.keep != nullptr &&
      (b.keep->vocab() != b.vocab || b.keep_row < 0 || b.keep_row + b.rows > b.keep->rows()))
    Fail("logits", "internal error: the kept rows do not cover the block");
    // A fork and join of the threads costs about 25 µs, a few rows of a small vocabulary as much.
#pragma omp parallel for schedule(static) if (b.rows * b.vocab >= (1 << 16))
  for (int64_t j = 0; j < b.rows; ++j) ScoreRow(b, j, out[j]);
}

}  // namespace moe
