#pragma once
// What the hardware can do, measured in the benchmark's own process with the thread count it
// runs at (moe::SetNumThreads), so that throughput can be stated as a fraction of it: the read
// bandwidth a decode step is bound by, and the rate of the engine's bf16 GEMM path that a
// prefill is bound by.
#include <string>

namespace moe::bench {

// GB/s (1e9 bytes) of summing a 1 GiB buffer: best of five passes, eight streams per thread.
double ReadBandwidthGBs();

// GFLOP/s (1e9) of the engine's bf16 GEMM path (moe::Bf16MatMulTransposed with activations
// rounded to bf16, oneDNN) on a compute-bound product, best of a few; 0 when oneDNN has no
// bf16 kernel for this CPU (the engine then widens bf16 weights to f32).
double Bf16GemmPeakGflops();

// Whether the CPU reports AMX-BF16 (cpuid leaf 7, EDX bit 22). The kernels oneDNN picks also
// depend on the OS granting the AMX state; moe::Bf16MatMulIsa() says what it dispatches to.
bool CpuHasAmxBf16();

}  // namespace moe::bench
