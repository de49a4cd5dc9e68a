#pragma once
// y = x · Wᵀ for bf16 weights on the CPU's bf16 dot-product units (AVX512_BF16, or AMX where the
// CPU has it), through oneDNN's matmul. The weights are read as they lie in the checkpoint; no
// widened copy is made.
//
// The units multiply bf16 by bf16 and accumulate in fp32, so the fp32 activations must become
// bf16 first. Two ways (ActivationPrecision, core/activation_precision.h):
//   kF32:  x = hi + lo with hi = bf16(x), lo = bf16(x - hi); the two products are exact in fp32
//          and their sum is within about 2^-17 |x| of the fp32 product, i.e. as accurate as an
//          fp32 GEMM, at twice the bf16 cost (still about 2x the fp32 sgemm rate).
//   kBF16: x rounded to bf16 once, as PyTorch's bf16 runs do.
#include <cstdint>
#include <string>

#include "core/activation_precision.h"
#include "core/model_weights.h"

namespace moe {

// Whether oneDNN has a native bf16 kernel for this CPU (otherwise callers widen the weights).
bool Bf16MatMulAvailable();

// The instruction set oneDNN dispatches to on this CPU ("avx512_core_bf16", "avx512_core_amx",
// ...): dnnl_get_effective_cpu_isa(), the most it may use here, which its matmul kernels name.
std::string Bf16MatMulIsa();

// y[rows, w.rows] = x[rows, w.cols] · wᵀ (accumulate: y +=). w.dtype must be BF16.
void Bf16MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate,
                          ActivationPrecision precision);

}  // namespace moe
