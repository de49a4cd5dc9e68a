#include "core/bf16_matmul.h"

#include <algorithm>
#include <map>

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "core/scratch_buffer.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace moe {
namespace {

// Rows are padded to a multiple of this, so that the number of distinct primitive shapes (one
// per expert group size otherwise) stays small.
constexpr int64_t kRowQuantum = 16;
// Primitives kept; a corpus run meets a few hundred shapes, more means something unusual.
constexpr size_t kMaxCachedPrimitives = 1024;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Primitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul matmul;
};

// src [m, k] bf16 · weights [k, n] bf16 (stored as the checkpoint's [n, k] rows, i.e. format ba)
// → dst [m, n] f32. Creating a primitive descriptor costs tens of microseconds, so they are
// cached by shape, per calling thread (no lock on the hot path, no primitive shared between the
// app's concurrent jobs). A primitive splits its work for the thread count it was created under
// and keeps that split, so the count is part of the key: one made for 1 thread ran on 1 thread
// after SetNumThreads(2). Inside a parallel loop (experts side by side) a product has one thread.
const Primitive& MatMulPrimitive(int64_t m, int64_t n, int64_t k) {
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, int>, Primitive> cache;
  const auto key = std::make_tuple(m, n, k, omp_in_parallel() ? 1 : omp_get_max_threads());
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= kMaxCachedPrimitives) cache.clear();
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::desc src({m, k}, dt::bf16, tag::ab);
  const dnnl::memory::desc weights({k, n}, dt::bf16, tag::ba);
  const dnnl::memory::desc dst({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  // Our own scratchpad per calling thread: the GUI runs models on several threads at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), attr, CpuEngine());
  return cache.emplace(key, Primitive{pd, dnnl::matmul(pd)}).first->second;
}

// hi = bf16(x) and, when lo is given, lo = bf16(x - hi); rounding to nearest even.
void SplitToBf16(const float* x, int64_t n, uint16_t* hi, uint16_t* lo) {
  int64_t i = 0;
#if defined(__AVX512BF16__)
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m256bh h = _mm512_cvtneps_pbh(v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + i), reinterpret_cast<const __m256i&>(h));
    if (lo != nullptr) {
      const __m512 hf = _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(h)), 16));
      const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + i), reinterpret_cast<const __m256i&>(l));
    }
  }
#endif
  for (; i < n; ++i) {
    hi[i] = F32ToBF16(x[i]);
    if (lo != nullptr) lo[i] = F32ToBF16(x[i] - BF16ToF32(hi[i]));
  }
}

}  // namespace

bool Bf16MatMulAvailable() {
  static const bool available = [] {
    try {
      // oneDNN falls back to reference C loops when the CPU has no bf16 instructions.
      const std::string impl = MatMulPrimitive(kRowQuantum, 64, 64).pd.impl_info_str();
      return impl.rfind("ref", 0) != 0;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

std::string Bf16MatMulIsa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

void Bf16MatMulTransposed(const float* x, int64_t rows, const Matrix& w, float* y, bool accumulate,
                          ActivationPrecision precision) {
  const int64_t k = w.cols, n = w.rows;
  const bool split = precision == ActivationPrecision::kF32;
  const int64_t parts = split ? 2 : 1;
  const int64_t m = (parts * rows + kRowQuantum - 1) / kRowQuantum * kRowQuantum;

  // src = [hi rows; lo rows; zero padding], dst = the matching [m, n] products. When dst would
  // be y itself (one part, no padding, no accumulation), the products go straight there.
  thread_local ScratchBuffer<uint16_t> src_buffer;
  thread_local ScratchBuffer<float> dst_buffer;
  thread_local ScratchBuffer<uint8_t> scratchpad;
  uint16_t* src = src_buffer.Get(static_cast<size_t>(m * k));
  const bool direct = !split && !accumulate && m == rows;
  float* dst = direct ? y : dst_buffer.Get(static_cast<size_t>(m * n));
  uint16_t* hi = src;
  uint16_t* lo = split ? src + rows * k : nullptr;
#pragma omp parallel for schedule(static) if (rows * k >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    SplitToBf16(x + r * k, k, hi + r * k, lo ? lo + r * k : nullptr);
  std::fill(src + parts * rows * k, src + m * k, uint16_t{0});

  const Primitive& p = MatMulPrimitive(m, n, k);
  dnnl::engine& engine = CpuEngine();
  dnnl::memory src_mem(p.pd.src_desc(), engine, src);
  dnnl::memory weights_mem(p.pd.weights_desc(), engine, const_cast<void*>(w.data));
  dnnl::memory dst_mem(p.pd.dst_desc(), engine, dst);
  dnnl::memory scratch_mem(p.pd.scratchpad_desc(), engine,
                           scratchpad.Get(std::max<size_t>(p.pd.scratchpad_desc().get_size(), 1)));
  thread_local dnnl::stream stream(engine);
  p.matmul.execute(stream, {{DNNL_ARG_SRC, src_mem},
                            {DNNL_ARG_WEIGHTS, weights_mem},
                            {DNNL_ARG_DST, dst_mem},
                            {DNNL_ARG_SCRATCHPAD, scratch_mem}});
  stream.wait();
  if (direct) return;

  const float* d_hi = dst;
  const float* d_lo = split ? dst + rows * n : nullptr;
#pragma omp parallel for schedule(static) if (rows * n >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    float* out = y + r * n;
    const float* a = d_hi + r * n;
    const float* b = d_lo ? d_lo + r * n : nullptr;
    for (int64_t j = 0; j < n; ++j) {
      const float v = b ? a[j] + b[j] : a[j];
      out[j] = accumulate ? out[j] + v : v;
    }
  }
}

}  // namespace moe
