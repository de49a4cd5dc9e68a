#include "core/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/bf16_matmul.h"
#include "core/scratch_buffer.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace moe {
namespace {

// Rows of a 16-bit weight matrix widened per GEMM call (64 rows of a 4096-wide matrix are 1 MiB):
// a fixed split, small enough that an expert's few hundred rows keep both threads busy.
constexpr int64_t kWidenBlockRows = 64;
// Up to this many activation rows (decoding), a 16-bit product streams the weights once through
// dot kernels: it is bound by reading them, and a GEMM would first convert or pack them.
constexpr int64_t kStreamingMaxRows = 8;

const uint16_t* Row16(const Matrix& w, int64_t r) {
  return static_cast<const uint16_t*>(w.data) + r * w.cols;
}

// Weight element i of a 16-bit row in dtype D (BF16 or F16), as fp32.
template <DType D>
float WeightAt(const void* row, int64_t i) {
  const uint16_t h = static_cast<const uint16_t*>(row)[i];
  return D == DType::kBF16 ? BF16ToF32(h) : F16ToF32(h);
}

#if defined(__AVX512F__)
// The sum of a register's 16 lanes. (GCC 12's _mm512_reduce_add_ps trips its own
// -Wuninitialized inside loops.)
float HorizontalSum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}

// Weight elements i..i+15 of a 16-bit row, widened to fp32 (bf16 is the upper half of fp32).
template <DType D>
__m512 Load16(const void* row, int64_t i) {
  const __m256i h =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
  if constexpr (D == DType::kBF16)
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// The same for the 8 lanes of AVX2 (CPUs without AVX-512).
float HorizontalSum(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}

template <DType D>
__m256 Load8(const void* row, int64_t i) {
  const __m128i h =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
  if constexpr (D == DType::kBF16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}
#define MOESCOPE_AVX2_KERNELS 1
#endif

// dot(row, x) over `cols` elements of a 16-bit weight row in dtype D. Two accumulators over 32
// elements per step keep the FMA latency hidden (four of 8 lanes with AVX2 only). Rows are read
// front to back and a thread takes consecutive rows, so its reads form one sequential stream
// (reading four stretches of rows side by side measured no faster on the project machine).
template <DType D>
float DotRow(const void* row, int64_t cols, const float* x) {
  int64_t i = 0;
  float sum = 0.0f;
#if defined(__AVX512F__)
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (; i + 32 <= cols; i += 32) {
    acc0 = _mm512_fmadd_ps(Load16<D>(row, i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(Load16<D>(row, i + 16), _mm512_loadu_ps(x + i + 16), acc1);
  }
  sum = HorizontalSum(_mm512_add_ps(acc0, acc1));
#elif defined(MOESCOPE_AVX2_KERNELS)
  // Four accumulators of 8 lanes: the same 32 elements per step.
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (; i + 32 <= cols; i += 32)
    for (int a = 0; a < 4; ++a)
      acc[a] = _mm256_fmadd_ps(Load8<D>(row, i + 8 * a), _mm256_loadu_ps(x + i + 8 * a), acc[a]);
  sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
#endif
  for (; i < cols; ++i) sum += WeightAt<D>(row, i) * x[i];
  return sum;
}

// Below this many weight elements a product runs on the calling thread alone: waking the others
// would cost more than reading the matrix (a router's 8 x 1024 weights, say).
constexpr int64_t kParallelMinElements = int64_t{1} << 15;

}  // namespace

StreamedRows::StreamedRows(std::span<const MatMulTarget> targets)
    : targets_(targets), dtype_(targets.empty() ? DType::kBF16 : targets.front().w->dtype) {
  for (const MatMulTarget& t : targets) first_.push_back(first_.back() + t.w->rows);
}

bool StreamedRows::Streams(std::span<const MatMulTarget> targets) {
  if (targets.empty()) return false;
  const Matrix& w0 = *targets.front().w;
  bool streams = w0.dtype == DType::kBF16 || w0.dtype == DType::kF16;
  for (const MatMulTarget& t : targets)
    streams = streams && t.w->dtype == w0.dtype && t.w->cols == w0.cols;
  return streams;
}

void StreamedRows::Compute(int64_t o, const float* x, int64_t rows, bool accumulate) const {
  // Output row o of all targets together: its weight row, its input and where its result goes.
  const size_t j =
      static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), o) - first_.begin() - 1);
  const MatMulTarget& t = targets_[j];
  const int64_t cols = t.w->cols;
  const void* w = static_cast<const uint8_t*>(t.w->data) +
                  static_cast<size_t>((o - first_[j]) * cols) * DTypeSize(dtype_);
  const float* in = t.x ? t.x : x;
  float* y = t.y + (o - first_[j]);
  for (int64_t r = 0; r < rows; ++r) {
    const float v = dtype_ == DType::kBF16 ? DotRow<DType::kBF16>(w, cols, in + r * cols)
                                           : DotRow<DType::kF16>(w, cols, in + r * cols);
    float& out = y[r * t.w->rows];
    out = accumulate ? out + v : v;
  }
}

namespace {

// y_j = x · W_jᵀ for a few activation rows and every target j (all of one 16-bit dtype and one
// width). Each weight row is read from memory once and stays in L1 while each activation row
// passes; no scratch, no widened copy. The targets' output rows are shared out among the threads
// together, each thread taking consecutive rows so its reads form one sequential stream.
void StreamingMatMul16(const float* x, int64_t rows, std::span<const MatMulTarget> targets,
                       bool accumulate) {
  const StreamedRows products(targets);
  const int64_t total = products.count(), cols = targets.front().w->cols;
#pragma omp parallel for schedule(static) if (total * cols >= kParallelMinElements)
  for (int64_t o = 0; o < total; ++o) products.Compute(o, x, rows, accumulate);
}

// 16-bit weights on CPUs without bf16 units: blocks of kWidenBlockRows weight rows widened to
// fp32, each block one single-threaded sgemm, the blocks shared out among the threads. OpenBLAS's
// own threads would change the order of its sums with their number (on an AVX2 EPYC the bundled
// model's hidden states after a 200-token prefill differed in 47k of 200k values between 1 and 2
// threads); with a fixed split every output comes from the same call whatever the thread count.
// With bf16 activations x is rounded to bf16 first, as on the bf16 units (core/bf16_matmul.h),
// so the mode means the same on every CPU.
void WidenedMatMul16(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate,
                     ActivationPrecision precision) {
  const int64_t cols = w.cols;
  thread_local ScratchBuffer<float> rounded_buffer;
  if (precision == ActivationPrecision::kBF16 && w.dtype == DType::kBF16) {
    float* rounded = rounded_buffer.Get(static_cast<size_t>(rows * cols));  // [rows, cols]
    for (int64_t i = 0; i < rows * cols; ++i) rounded[i] = BF16ToF32(F32ToBF16(x[i]));
    x = rounded;
  }
  const int64_t blocks = (w.rows + kWidenBlockRows - 1) / kWidenBlockRows;
  // OpenBLAS must not start its own threads while the OpenMP threads call it.
  openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    thread_local ScratchBuffer<float> block_buffer;
    const int64_t r0 = b * kWidenBlockRows, n = std::min(kWidenBlockRows, w.rows - r0);
    float* block = block_buffer.Get(static_cast<size_t>(n * cols));  // [n, cols] fp32
    ToF32(w.dtype, Row16(w, r0), block, static_cast<size_t>(n * cols));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(cols), 1.0f, x, static_cast<int>(cols), block,
                static_cast<int>(cols), accumulate ? 1.0f : 0.0f, y + r0, static_cast<int>(w.rows));
  }
  openblas_set_num_threads(omp_get_max_threads());
}

}  // namespace

void MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate) {
  if (rows == 0 || w.rows == 0) return;
  const float beta = accumulate ? 1.0f : 0.0f;
  if (w.dtype == DType::kF32) {
    // OpenBLAS's sgemv read f32 rows faster than DotRow did (measured on shape S).
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
    const MatMulTarget target{&w, y};
    StreamingMatMul16(x, rows, {&target, 1}, accumulate);
  } else if (w.dtype == DType::kBF16 && Bf16MatMulAvailable()) {
    Bf16MatMulTransposed(x, rows, w, y, accumulate, GetActivationPrecision());
  } else {
    WidenedMatMul16(x, rows, w, y, accumulate, GetActivationPrecision());
  }
}

void MatMulTransposedMany(const float* x, int64_t rows, std::span<const MatMulTarget> targets) {
  if (rows == 0 || targets.empty()) return;
  if (rows <= kStreamingMaxRows && StreamedRows::Streams(targets)) {
    StreamingMatMul16(x, rows, targets, /*accumulate=*/false);
  } else {
    for (const MatMulTarget& t : targets) MatMulTransposed(t.x ? t.x : x, rows, *t.w, t.y);
  }
}

bool MatMulRunsConcurrently(const Matrix& w) {
  return w.dtype == DType::kBF16 && Bf16MatMulAvailable();
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

float DotBF16(const uint16_t* row, int64_t n, const float* x) {
  return DotRow<DType::kBF16>(row, n, x);
}

void AxpyBF16(float a, const uint16_t* row, int64_t n, float* y) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 av = _mm512_set1_ps(a);
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i,
                     _mm512_fmadd_ps(av, Load16<DType::kBF16>(row, i), _mm512_loadu_ps(y + i)));
#elif defined(MOESCOPE_AVX2_KERNELS)
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_fmadd_ps(av, Load8<DType::kBF16>(row, i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * WeightAt<DType::kBF16>(row, i);
}

void SetNumThreads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int NumThreads() {
  return omp_get_max_threads();
}

}  // namespace moe
