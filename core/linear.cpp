#include "core/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/bf16_matmul.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace moe {
namespace {

std::atomic<ActivationPrecision> g_activation_precision{ActivationPrecision::kF32};

// Rows of a 16-bit weight matrix widened per GEMM call; 256 rows of a 4096-wide matrix are 4 MiB.
constexpr int64_t kWidenBlockRows = 256;
// Up to this many activation rows, a 16-bit product streams the weights once with dot kernels
// instead of widening them for sgemm.
constexpr int64_t kStreamingMaxRows = 8;

const uint16_t* Row16(const Matrix& w, int64_t r) {
  return static_cast<const uint16_t*>(w.data) + r * w.cols;
}

// Dot product of a widened 16-bit row with an fp32 vector.
float Dot16(DType dtype, const uint16_t* w, const float* x, int64_t n) {
  int64_t i = 0;
  float sum = 0.0f;
#if defined(__AVX512F__)
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  if (dtype == DType::kBF16) {
    for (; i + 32 <= n; i += 32) {
      __m512i a =
          _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
      __m512i b =
          _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)));
      acc0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), _mm512_loadu_ps(x + i),
                             acc0);
      acc1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(b, 16)),
                             _mm512_loadu_ps(x + i + 16), acc1);
    }
  } else {
    for (; i + 32 <= n; i += 32) {
      __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
      __m512 b = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)));
      acc0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), acc0);
      acc1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(x + i + 16), acc1);
    }
  }
  sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) {
    sum += (dtype == DType::kBF16 ? BF16ToF32(w[i]) : F16ToF32(w[i])) * x[i];
  }
  return sum;
}

void StreamingMatMul16(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < w.rows; ++o) {
    const uint16_t* wr = Row16(w, o);
    for (int64_t r = 0; r < rows; ++r) {
      const float v = Dot16(w.dtype, wr, x + r * w.cols, w.cols);
      float& out = y[r * w.rows + o];
      out = accumulate ? out + v : v;
    }
  }
}

void WidenedMatMul16(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate) {
  thread_local std::vector<float> block;
  const int64_t block_rows = std::min(w.rows, kWidenBlockRows);
  block.resize(static_cast<size_t>(block_rows * w.cols));
  for (int64_t r0 = 0; r0 < w.rows; r0 += block_rows) {
    const int64_t n = std::min(block_rows, w.rows - r0);
    ToF32(w.dtype, Row16(w, r0), block.data(), static_cast<size_t>(n * w.cols));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(w.cols), 1.0f, x, static_cast<int>(w.cols),
                block.data(), static_cast<int>(w.cols), accumulate ? 1.0f : 0.0f, y + r0,
                static_cast<int>(w.rows));
  }
}

}  // namespace

void MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate) {
  if (rows == 0 || w.rows == 0) return;
  const float beta = accumulate ? 1.0f : 0.0f;
  if (w.dtype == DType::kF32) {
    const float* wd = static_cast<const float*>(w.data);
    if (rows == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(w.rows), static_cast<int>(w.cols),
                  1.0f, wd, static_cast<int>(w.cols), x, 1, beta, y, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                  static_cast<int>(w.rows), static_cast<int>(w.cols), 1.0f, x,
                  static_cast<int>(w.cols), wd, static_cast<int>(w.cols), beta, y,
                  static_cast<int>(w.rows));
    }
  } else if (rows <= kStreamingMaxRows) {
    StreamingMatMul16(x, rows, w, y, accumulate);
  } else if (w.dtype == DType::kBF16 && Bf16MatMulAvailable()) {
    Bf16MatMulTransposed(x, rows, w, y, accumulate, g_activation_precision.load());
  } else {
    WidenedMatMul16(x, rows, w, y, accumulate);
  }
}

void AddBias(float* y, int64_t rows, const Vector& b) {
  if (b.empty()) return;
  std::vector<float> bias(static_cast<size_t>(b.size));
  ToF32(b.dtype, b.data, bias.data(), bias.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < b.size; ++i) y[r * b.size + i] += bias[i];
}

void CopyRow(const Matrix& w, int64_t row, float* out) {
  const auto* base = static_cast<const uint8_t*>(w.data) + row * w.cols * DTypeSize(w.dtype);
  ToF32(w.dtype, base, out, static_cast<size_t>(w.cols));
}

void SetActivationPrecision(ActivationPrecision precision) {
  g_activation_precision.store(precision);
}

ActivationPrecision GetActivationPrecision() {
  return g_activation_precision.load();
}

void SetNumThreads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int NumThreads() {
  return omp_get_max_threads();
}

}  // namespace moe
