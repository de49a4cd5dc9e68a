#pragma once
// y = x · Wᵀ for weights in their checkpoint dtype. F32 goes straight to OpenBLAS; BF16/F16
// weights are widened inside the kernel (a few rows at a time for GEMMs, on the fly for
// matrix-vector products), never as a whole fp32 copy.
#include <cstdint>

#include "core/model_weights.h"

namespace moe {

// y[rows, w.rows] = x[rows, w.cols] · wᵀ, overwriting y. accumulate = true adds instead.
void MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y,
                      bool accumulate = false);

// y[r, :] += b for every row r.
void AddBias(float* y, int64_t rows, const Vector& b);

// Row `row` of w (an embedding lookup), widened to fp32.
void CopyRow(const Matrix& w, int64_t row, float* out);

// Sets the thread count of OpenMP and of OpenBLAS together (they must not oversubscribe).
void SetNumThreads(int threads);
int NumThreads();

}  // namespace moe
