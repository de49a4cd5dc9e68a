#include "bench/hardware_probes.h"

#include <cpuid.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "bench/bench_timing.h"
#include "core/activation_precision.h"
#include "core/bf16_matmul.h"
#include "core/model_weights.h"
#include "core/tensor.h"

namespace moe::bench {

// Far larger than any cache. Each thread reads eight streams at once, as a matrix-vector product
// over many weight rows does; one stream reaches only about 70 % of that on these machines.
double ReadBandwidthGBs() {
  constexpr size_t kStreams = 8;
  const size_t n = size_t{1} << 28;  // floats
  const size_t chunk = n / kStreams;
  // In 2 MiB pages where the kernel gives them, as the weights are with --weight-pages huge: in
  // 4 KiB pages the probe's own TLB misses held it to about 25 GB/s at 2 threads on the
  // project's machines, below what decoding from huge pages reads.
  constexpr size_t kHugePage = size_t{2} << 20;
  std::unique_ptr<float, decltype(&std::free)> memory(
      static_cast<float*>(std::aligned_alloc(kHugePage, n * sizeof(float))), &std::free);
  if (!memory) throw std::bad_alloc();
  ::madvise(memory.get(), n * sizeof(float), MADV_HUGEPAGE);
  const std::span<float> buffer(memory.get(), n);
  std::fill(buffer.begin(), buffer.end(), 1.0f);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = Clock::now();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const size_t threads = static_cast<size_t>(omp_get_num_threads());
      const size_t id = static_cast<size_t>(omp_get_thread_num());
      const size_t begin = chunk * id / threads / 16 * 16,
                   end = chunk * (id + 1) / threads / 16 * 16;
#if defined(__AVX512F__)
      // One accumulator per stream, summed once at the end: the loop is loads and adds only.
      __m512 acc[kStreams];
      for (__m512& a : acc) a = _mm512_setzero_ps();
      for (size_t i = begin; i < end; i += 16)
        for (size_t s = 0; s < kStreams; ++s)
          acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(buffer.data() + s * chunk + i));
      alignas(64) float lanes[16];
      for (size_t s = 0; s < kStreams; ++s) {
        _mm512_store_ps(lanes, acc[s]);
        for (float x : lanes) total += x;
      }
#elif defined(__AVX2__)
      __m256 acc[kStreams];
      for (__m256& a : acc) a = _mm256_setzero_ps();
      for (size_t i = begin; i < end; i += 8)
        for (size_t s = 0; s < kStreams; ++s)
          acc[s] = _mm256_add_ps(acc[s], _mm256_loadu_ps(buffer.data() + s * chunk + i));
      alignas(32) float lanes[8];
      for (size_t s = 0; s < kStreams; ++s) {
        _mm256_store_ps(lanes, acc[s]);
        for (float x : lanes) total += x;
      }
#else
      for (size_t i = begin; i < end; ++i)
        for (size_t s = 0; s < kStreams; ++s) total += buffer[s * chunk + i];
#endif
    }
    const double s = Seconds(start);
    if (total < 0) std::abort();  // keeps the loop observable
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

// y[M, N] = x[M, K] · wᵀ with w [N, K] bf16 (a checkpoint's [out, in] layout), M = 1024 rows of
// activations, N = K = 4096 (a large model's projection): 34 GFLOP per product, far from bound
// by reading its 32 MiB of weights. One untimed product creates the primitive, then the best
// of three.
double Bf16GemmPeakGflops() {
  if (!moe::Bf16MatMulAvailable()) return 0;
  constexpr int64_t kM = 1024, kN = 4096, kK = 4096;
  std::vector<float> x(static_cast<size_t>(kM * kK));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) / 16.0f - 0.375f;
  std::vector<uint16_t> w_data(static_cast<size_t>(kN * kK));
  for (size_t i = 0; i < w_data.size(); ++i)
    w_data[i] = moe::F32ToBF16(static_cast<float>(i % 7) / 64.0f - 0.05f);
  const moe::Matrix w{.dtype = moe::DType::kBF16, .data = w_data.data(), .rows = kN, .cols = kK};
  std::vector<float> y(static_cast<size_t>(kM * kN));
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto start = Clock::now();
    moe::Bf16MatMulTransposed(x.data(), kM, w, y.data(), false, moe::ActivationPrecision::kBF16);
    const double s = Seconds(start);
    if (std::isnan(y[0])) std::abort();  // keeps the product observable
    if (pass > 0) best = std::max(best, 2.0 * kM * kN * kK / s / 1e9);
  }
  return best;
}

bool CpuHasAmxBf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;  // no leaf 7
  return (edx >> 22) & 1u;
}

}  // namespace moe::bench
