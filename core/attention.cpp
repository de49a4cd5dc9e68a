#include "core/attention.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/linear.h"
#include "core/ops.h"
#include "core/scratch_buffer.h"

namespace moe {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedConstMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

// Queries handled together: their scores against the keys they may see form one GEMM.
constexpr int64_t kQueryBlock = 64;

// Softmax of one query's scores over keys [first, visible) with the padding keys left out, in
// place; keys before `first` (outside a sliding window) and from `visible` on get probability 0.
// Returns false when no key is allowed.
//
// Upstream sets forbidden scores to finfo(float32).min rather than -inf, so a query with no
// allowed key (a left-padding row) sees a row of equal scores and attends uniformly to every key;
// the caller reproduces that, so routing statistics over padding rows match upstream.
//
// Whether a key is allowed comes from the mask alone, never from the scores: a row of NaN scores
// (NaN weights, loaded with LoadOptions::allow_non_finite_weights) must give NaN as in PyTorch,
// not pass for a padding row and attend uniformly. So the maximum keeps a NaN (std::max would
// drop it), and a row of -inf scores gives NaN through exp(-inf - -inf).
bool CausalSoftmax(float* row, int64_t first, int64_t visible, const uint8_t* key_real) {
  bool any_allowed = false;
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = first; j < visible; ++j) {
    if (!key_real[j]) continue;
    any_allowed = true;
    if (row[j] > m || std::isnan(row[j])) m = row[j];
    if (std::isnan(m)) break;
  }
  if (!any_allowed) return false;
  std::fill(row, row + first, 0.0f);
  ExpShifted(row + first, visible - first, m);
  float sum = 0.0f;
  for (int64_t j = first; j < visible; ++j) {
    if (!key_real[j]) row[j] = 0.0f;
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = first; j < visible; ++j) row[j] *= inv;
  return true;
}

// OLMoE, Qwen3 and dots1 normalize queries and keys after their projections: over each token's
// whole projection (full width) or over each head (per head). OLMoE then clamps q, k and v.
void NormalizeAndClip(const ModelConfig& c, const LayerWeights& w, int64_t T, float* q, float* k,
                      float* v) {
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, d = c.head_dim();
  if (c.qk_norm == QkNorm::kFullWidth) {
    RmsNorm(q, T, nh * d, w.q_norm, c.rms_norm_eps, q);
    RmsNorm(k, T, nkv * d, w.k_norm, c.rms_norm_eps, k);
  } else if (c.qk_norm == QkNorm::kPerHead) {
    RmsNorm(q, T * nh, d, w.q_norm, c.rms_norm_eps, q);
    RmsNorm(k, T * nkv, d, w.k_norm, c.rms_norm_eps, k);
  }
  if (c.clip_qkv > 0) {
    const float lim = c.clip_qkv;
    for (auto [x, n] : {std::pair{q, T * nh * d}, {k, T * nkv * d}, {v, T * nkv * d}})
      for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -lim, lim);
  }
}

// One query (a decode step) against the `keys` bf16 keys and values of a head in a bf16 cache:
// scores by dot products and the weighted sum straight from the bf16 rows, so the step reads
// half the bytes of an fp32 cache and writes no widened copy. The same arithmetic as the
// blocked path, in fp32, but summed in another order.
void DecodeQueryBF16(const float* q, const uint16_t* k, const uint16_t* v, int64_t keys, int d,
                     float score_scale, int64_t window, const uint8_t* key_real, float* out) {
  thread_local ScratchBuffer<float> score_buffer;
  float* row = score_buffer.Get(static_cast<size_t>(keys));  // [keys]
  for (int64_t j = 0; j < keys; ++j) row[j] = DotBF16(k + j * d, d, q) * score_scale;
  const int64_t first = window > 0 ? std::max<int64_t>(0, keys - window) : 0;
  // No allowed key (a padding row): every value weighs the same, as in the blocked path.
  const bool any_allowed = CausalSoftmax(row, first, keys, key_real);
  std::fill(out, out + d, 0.0f);
  for (int64_t j = 0; j < keys; ++j) AxpyBF16(any_allowed ? row[j] : 1.0f, v + j * d, d, out);
  if (any_allowed) return;
  for (int i = 0; i < d; ++i) out[i] /= static_cast<float>(keys);
}

}  // namespace

void PrepareQueriesAndKeys(const ModelConfig& c, const LayerWeights& w, int64_t T, const Rope& rope,
                           const int32_t* positions, float* q, float* k, float* v) {
  AddBias(q, T, w.q_bias);
  AddBias(k, T, w.k_bias);
  AddBias(v, T, w.v_bias);
  NormalizeAndClip(c, w, T, q, k, v);
  rope.Apply(q, T, c.num_attention_heads, positions);
  rope.Apply(k, T, c.num_key_value_heads, positions);
}

void AttendHead(const ModelConfig& c, int layer, const KvCache& cache, int64_t S, const float* q,
                int64_t b, int h, float* attn, const float* keys, const float* values) {
  const int nh = c.num_attention_heads, d = c.head_dim();
  const int kvh = h / (nh / c.num_key_value_heads);
  const int64_t P = cache.length(), keys_total = P + S;
  const float score_scale =
      c.attention_multiplier > 0 ? c.attention_multiplier : 1.0f / std::sqrt(static_cast<float>(d));
  // A sliding window lets query i see keys i - W < j <= i (cache indices); 0 = no window.
  const int64_t window = c.SlidingWindow(layer);
  const uint8_t* key_real = cache.key_mask(b);
  if (S == 1 && cache.type() == KvCacheType::kBF16) {
    DecodeQueryBF16(q + (b * nh + h) * d, cache.keys_bf16(layer, b, kvh),
                    cache.values_bf16(layer, b, kvh), keys_total, d, score_scale, window, key_real,
                    attn + (b * nh + h) * d);
    return;
  }
  // Every query reads the keys and values back from the cache, as stored: the caller's widened
  // copy, or the cache's own memory (an fp32 cache) or widened here (a bf16 one), for the GEMMs of
  // a block of queries.
  thread_local ScratchBuffer<float> score_buffer, key_buffer, value_buffer;
  const float* kh = keys ? keys : cache.Keys(layer, b, kvh, keys_total, key_buffer);  // [P + S, d]
  const float* vh = values ? values : cache.Values(layer, b, kvh, keys_total, value_buffer);
  for (int64_t s0 = 0; s0 < S; s0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, S - s0);
    const int64_t keys = P + s0 + rows;  // the last query of the block sees this many
    StridedConstMap qb(q + ((b * S + s0) * nh + h) * d, rows, d, Eigen::OuterStride<>(nh * d));
    Eigen::Map<RowMatrix> scores(score_buffer.Get(static_cast<size_t>(rows * keys)), rows, keys);
    scores.noalias() = (qb * Eigen::Map<const RowMatrix>(kh, keys, d).transpose()) * score_scale;
    StridedMap ob(attn + ((b * S + s0) * nh + h) * d, rows, d, Eigen::OuterStride<>(nh * d));
    std::vector<int64_t> no_allowed_key;
    for (int64_t i = 0; i < rows; ++i) {
      float* row = scores.data() + i * keys;
      const int64_t visible = P + s0 + i + 1;
      const int64_t first = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
      if (!CausalSoftmax(row, first, visible, key_real)) no_allowed_key.push_back(i);
      std::fill(row + visible, row + keys, 0.0f);
    }
    ob.noalias() = scores * Eigen::Map<const RowMatrix>(vh, keys, d);
    for (int64_t i : no_allowed_key)
      ob.row(i) = Eigen::Map<const RowMatrix>(vh, keys_total, d).colwise().mean();
  }
}

void SelfAttention(const ModelConfig& c, const LayerWeights& w, int layer, const float* x,
                   const Batch& batch, const Rope& rope, KvCache& cache, float* out) {
  const int64_t B = batch.batch_size, S = batch.seq_len, T = B * S;
  const int nh = c.num_attention_heads, nkv = c.num_key_value_heads, d = c.head_dim();
  const int64_t P = cache.length(), keys_total = P + S;

  // Scratch kept per thread across calls: fresh multi-MiB buffers are mmapped, page-faulted
  // and zeroed on every call, which cost a quarter of prefill time (bench/README.md).
  thread_local ScratchBuffer<float> q_buffer, k_buffer, v_buffer, attn_buffer;
  float* q = q_buffer.Get(static_cast<size_t>(T * nh * d));   // [T, nh, d]
  float* k = k_buffer.Get(static_cast<size_t>(T * nkv * d));  // [T, nkv, d]
  float* v = v_buffer.Get(static_cast<size_t>(T * nkv * d));  // [T, nkv, d]
  MatMulTransposedMany(x, T, {{&w.q, q}, {&w.k, k}, {&w.v, v}});
  PrepareQueriesAndKeys(c, w, T, rope, batch.positions.data(), q, k, v);

  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < S; ++s) cache.key_mask(b)[P + s] = batch.mask[b * S + s] != 0;
    for (int h = 0; h < nkv; ++h) {
      for (int64_t s = 0; s < S; ++s) {
        const size_t src = static_cast<size_t>(((b * S + s) * nkv + h) * d);
        cache.Store(layer, b, h, P + s, k + src, v + src);
      }
    }
  }

  float* attn = attn_buffer.Get(static_cast<size_t>(T * nh * d));  // [T, nh, d]
  // Inside the parallel region a thread_local name means the worker's own copy; pass pointers.
  const float* q_all = q;
  float* attn_all = attn;
  // A decode step's few scores per head are quicker on one thread than worth waking another.
  const bool parallel = B * nh * S * keys_total * d >= (int64_t{1} << 20);
  // A bf16 cache's keys and values of each KV head are widened once for all the query heads of
  // its group, not once per query head ([B, nkv, P + S, d] each; a decode step reads them as bf16).
  thread_local ScratchBuffer<float> wide_key_buffer, wide_value_buffer;
  const bool widen = cache.type() == KvCacheType::kBF16 && S > 1;
  const size_t head_elements = static_cast<size_t>(keys_total * d);
  float* wide_keys = widen ? wide_key_buffer.Get(B * nkv * head_elements) : nullptr;
  float* wide_values = widen ? wide_value_buffer.Get(B * nkv * head_elements) : nullptr;
#pragma omp parallel for schedule(static) if (widen && parallel)
  for (int64_t g = 0; g < (widen ? B * nkv : 0); ++g) {
    const int64_t b = g / nkv;
    const int kvh = static_cast<int>(g % nkv);
    ToF32(DType::kBF16, cache.keys_bf16(layer, b, kvh), wide_keys + g * head_elements,
          head_elements);
    ToF32(DType::kBF16, cache.values_bf16(layer, b, kvh), wide_values + g * head_elements,
          head_elements);
  }
  const int n_rep = nh / nkv;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t b = 0; b < B; ++b) {
    for (int h = 0; h < nh; ++h) {
      const size_t group = static_cast<size_t>(b * nkv + h / n_rep) * head_elements;
      AttendHead(c, layer, cache, S, q_all, b, h, attn_all, widen ? wide_keys + group : nullptr,
                 widen ? wide_values + group : nullptr);
    }
  }
  MatMulTransposed(attn, T, w.o, out);
  AddBias(out, T, w.o_bias);
}

}  // namespace moe
