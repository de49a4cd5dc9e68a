#pragma once
// Small element-wise and row-wise kernels of the forward pass, all on fp32 activations.
#include <cstdint>

#include "core/model_weights.h"

namespace moe {

// out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps), rows of width `dim`. out may alias x.
void RmsNorm(const float* x, int64_t rows, int64_t dim, const Vector& weight, float eps,
             float* out);

// hidden[i] += multiplier · branch[i] over n elements: a block's output joins the residual
// stream (multiplier 1 except in Granite).
void AddResidual(const float* branch, float multiplier, int64_t n, float* hidden);

// a[i] = silu(a[i]) * b[i]  (SwiGLU).
void SiluMul(float* a, const float* b, int64_t n);

// Numerically stable softmax of one row, in place.
void Softmax(float* x, int64_t n);

// x[i] = exp(x[i] - shift), 16 values per step with Eigen's vectorized exp (within 2 ulp of
// std::exp). Which lane an element takes depends only on its index, never on the address, so
// the result is the same wherever x lies in memory.
void ExpShifted(float* x, int64_t n, float shift);

}  // namespace moe
