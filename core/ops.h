#pragma once
// Small element-wise and row-wise kernels of the forward pass, all on fp32 activations.
#include <cstdint>

#include "core/model_weights.h"

namespace moe {

// out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps), rows of width `dim`. out may alias x.
void RmsNorm(const float* x, int64_t rows, int64_t dim, const Vector& weight, float eps,
             float* out);

// a[i] = silu(a[i]) * b[i]  (SwiGLU).
void SiluMul(float* a, const float* b, int64_t n);

// Numerically stable softmax of one row, in place.
void Softmax(float* x, int64_t n);

// log softmax(logits)[target], in double for a stable sum over a large vocabulary.
double LogProbability(const float* logits, int64_t vocab, int32_t target);

}  // namespace moe
