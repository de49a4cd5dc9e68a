#pragma once
// Row-wise statistics of next-token logits over the vocabulary: log-sum-exp, the target's NLL,
// the argmax, and the KL divergence from a kept baseline row. Scoring, tracing, ablations and
// the live prompt all reduce their LM-head logits here, so they agree to the bit on every
// number they share (a policy that changes nothing has ΔNLL and KL exactly 0).
//
// Accuracy: exponentials are fp32 (vectorized, within 2 ulp of std::exp) of z − max(z), summed
// in double, so log-sum-exp and NLL are within about 2.4e-7 relative of a double-precision
// log-softmax (tests/unit/test_vocab_math.cpp asserts 1e-6 relative). KL is formed from exact
// double differences of logits weighted by the baseline's fp32 probabilities (see ScoreLogitRows).
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/scratch_buffer.h"

namespace moe {

// log Σ_v exp(logits[v]) of one row.
double LogSumExp(const float* logits, int64_t vocab);

// log softmax(logits)[target] = logits[target] − LogSumExp(logits).
double LogProbability(const float* logits, int64_t vocab, int32_t target);

// The lowest index of the largest logit (the first maximum, as std::max_element gives it).
int32_t ArgMax(const float* logits, int64_t vocab);

// Baseline rows kept to measure KL(baseline || another run) against: their logits and
// log-sum-exp. Memory: rows × vocab × 4 bytes (+ 8 bytes a row), half of double log-probs; it is
// reused, never re-zeroed, when sized again (a corpus job keeps one for all its batches).
class BaselineLogits {
 public:
  // Contents undefined until rows are kept (LogitBlock::keep).
  void Resize(int64_t rows, int64_t vocab);
  int64_t rows() const { return rows_; }
  int64_t vocab() const { return vocab_; }
  const float* Row(int64_t r) const { return logits_ + r * vocab_; }
  float* Row(int64_t r) { return logits_ + r * vocab_; }
  double& log_sum_exp(int64_t r) { return log_sum_exp_[static_cast<size_t>(r)]; }
  double log_sum_exp(int64_t r) const { return log_sum_exp_[static_cast<size_t>(r)]; }

 private:
  int64_t rows_ = 0, vocab_ = 0;
  ScratchBuffer<float> buffer_;
  float* logits_ = nullptr;          // [rows, vocab] in buffer_
  std::vector<double> log_sum_exp_;  // [rows]
};

struct LogitRowStats {
  double log_sum_exp = 0.0;
  double nll = std::nan("");  // −log p(target); NaN without targets
  double kl = std::nan("");   // KL(baseline row || this row), clamped at 0; NaN without baseline
  int32_t argmax = -1;
};

// One block of rows to reduce.
struct LogitBlock {
  const float* logits = nullptr;  // [rows, vocab]
  int64_t rows = 0, vocab = 0;
  const int32_t* targets = nullptr;  // [rows], or null: no NLL
  // Set: row j's KL from baseline row baseline_row + j.
  const BaselineLogits* baseline = nullptr;
  int64_t baseline_row = 0;
  // Set: row j's logits and log-sum-exp are kept as row keep_row + j (keep must be sized).
  BaselineLogits* keep = nullptr;
  int64_t keep_row = 0;
};

// out[block.rows]. Rows run in parallel (OpenMP); a row's result does not depend on the thread
// count or on where the row lies in memory. KL(b || p) = Σ_v p_b(v) (z_b(v) − z_p(v)) −
// (lse_b − lse_p) Σ_v p_b(v), with p_b = exp(z_b − lse_b) in fp32 and the differences of logits
// in double (exact): identical rows give exactly 0, and near-identical ones a KL accurate to
// about 1e-7 of Σ p_b |log p_b − log p_p| plus the log-sum-exp error.
void ScoreLogitRows(const LogitBlock& block, LogitRowStats* out);

}  // namespace moe
