#pragma once
// y = x · Wᵀ for weights in their checkpoint dtype. F32 goes straight to OpenBLAS. BF16 GEMMs
// run on the CPU's bf16 units through oneDNN (core/bf16_matmul.h); F16 GEMMs, and BF16 ones on
// CPUs without bf16 instructions, widen a few weight rows at a time for sgemm. Matrix-vector
// products (decode) stream 16-bit weights through dot kernels. No whole fp32 copy is ever made.
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "core/activation_precision.h"  // ActivationPrecision, part of this header's API
#include "core/model_weights.h"

namespace moe {

// y[rows, w.rows] = x[rows, w.cols] · wᵀ, overwriting y. accumulate = true adds instead.
void MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y,
                      bool accumulate = false);

// y_i = x_i · W_iᵀ for several matrices of the same width (q, k and v; the gate and up products of
// the experts a decoded token selected; their down products). With few rows (decoding) one pass
// of the worker threads serves all of them: each fork and join of the threads costs about 25 µs
// when idle threads sleep (OMP_WAIT_POLICY=PASSIVE), as much as reading a small matrix.
struct MatMulTarget {
  const Matrix* w;
  float* y;
  const float* x = nullptr;  // this product's own input; null: the input shared by all
};
void MatMulTransposedMany(const float* x, int64_t rows, std::span<const MatMulTarget> targets);
inline void MatMulTransposedMany(const float* x, int64_t rows,
                                 std::initializer_list<MatMulTarget> targets) {
  MatMulTransposedMany(x, rows, std::span<const MatMulTarget>(targets.begin(), targets.size()));
}

// The output rows of several 16-bit products of one width (the targets above), numbered one
// target after another, for a caller that shares them out among its threads itself: the decode
// step that keeps its threads in one parallel region (core/decode_step.h). Each row is the same
// dot product MatMulTransposedMany computes for it, so results do not depend on who runs it.
class StreamedRows {
 public:
  // Whether the targets qualify: BF16 or F16 weights, all of one dtype and one width.
  static bool Streams(std::span<const MatMulTarget> targets);

  // `targets` must be of one 16-bit dtype (their widths may differ when each has its own input)
  // and outlive this object.
  explicit StreamedRows(std::span<const MatMulTarget> targets);
  int64_t count() const { return first_.back(); }  // output rows of all targets
  // Output row o for `rows` activation rows of x (or of the target's own input): y = dot(weight
  // row, input row), or y += it with accumulate.
  void Compute(int64_t o, const float* x, int64_t rows, bool accumulate) const;

 private:
  std::span<const MatMulTarget> targets_;
  std::vector<int64_t> first_{0};  // first_[j]: output row where target j starts
  DType dtype_;
};

// Whether products with w may run on several threads at once (from inside a parallel loop):
// bf16 ones may (oneDNN, or the streaming kernels for few rows); f32 and f16 GEMMs go to
// OpenBLAS, which must not be called from a parallel region, where its thread pool is shared.
bool MatMulRunsConcurrently(const Matrix& w);

// y[r, :] += b for every row r.
void AddBias(float* y, int64_t rows, const Vector& b);

// dot(row, x) and y += a · row over n elements of a bf16 row (bit patterns), in fp32: the
// kernels of the bf16 matrix-vector products, for other bf16 rows (a bf16 KV cache's).
float DotBF16(const uint16_t* row, int64_t n, const float* x);
void AxpyBF16(float a, const uint16_t* row, int64_t n, float* y);

// Row `row` of w (an embedding lookup), widened to fp32.
void CopyRow(const Matrix& w, int64_t row, float* out);

// Sets the thread count of OpenMP and of OpenBLAS together (they must not oversubscribe).
void SetNumThreads(int threads);
int NumThreads();

}  // namespace moe
