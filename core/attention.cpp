#include "core/attention.h"

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/linear.h"

namespace moe {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedConstMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

// Upstream sets forbidden scores to finfo(float32).min rather than -inf. A query with no
// allowed key (a left-padding row) then sees a row of equal scores and attends uniformly to
// every key; we reproduce that so routing statistics over padding rows match upstream.
constexpr float kMasked = std::numeric_limits<float>::lowest();

void MaskedSoftmax(float* row, int64_t n) {
  float m = kMasked;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, row[j]);
  if (m == kMasked) {
    for (int64_t j = 0; j < n; ++j) row[j] = 1.0f / static_cast<float>(n);
    return;
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    row[j] = row[j] == kMasked ? 0.0f : std::exp(row[j] - m);
    sum += row[j];
  }
  for (int64_t j = 0; j < n; ++j) row[j] /= sum;
}

}  // namespace

void SelfAttention(const LlamaMoeConfig& c, const LayerWeights& w, int layer, const float* x,
                   const Batch& batch, const Rope& rope, KvCache& cache, float* out) {
  const int64_t B = batch.batch_size, S = batch.seq_len, T = B * S;
  const int nh = c.num_attention_heads, nkv = c.num_key_value_heads, d = c.head_dim();
  const int n_rep = nh / nkv;
  const int64_t P = cache.length(), keys_total = P + S;

  // Scratch kept per thread across calls: fresh multi-MiB buffers are mmapped, page-faulted
  // and zeroed on every call, which cost a quarter of prefill time (bench/README.md).
  thread_local std::vector<float> q, k, v, attn;
  q.resize(static_cast<size_t>(T * nh * d));   // [T, nh, d]
  k.resize(static_cast<size_t>(T * nkv * d));  // [T, nkv, d]
  v.resize(static_cast<size_t>(T * nkv * d));  // [T, nkv, d]
  MatMulTransposed(x, T, w.q, q.data());
  MatMulTransposed(x, T, w.k, k.data());
  MatMulTransposed(x, T, w.v, v.data());
  AddBias(q.data(), T, w.q_bias);
  AddBias(k.data(), T, w.k_bias);
  AddBias(v.data(), T, w.v_bias);
  rope.Apply(q.data(), T, nh, batch.positions.data());
  rope.Apply(k.data(), T, nkv, batch.positions.data());

  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < S; ++s) cache.key_mask(b)[P + s] = batch.mask[b * S + s] != 0;
    for (int h = 0; h < nkv; ++h) {
      float* kc = cache.keys(layer, b, h);
      float* vc = cache.values(layer, b, h);
      for (int64_t s = 0; s < S; ++s) {
        const size_t src = static_cast<size_t>(((b * S + s) * nkv + h) * d);
        std::memcpy(kc + (P + s) * d, k.data() + src, sizeof(float) * d);
        std::memcpy(vc + (P + s) * d, v.data() + src, sizeof(float) * d);
      }
    }
  }

  attn.resize(static_cast<size_t>(T * nh * d));  // [T, nh, d]
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  // Inside the parallel region a thread_local name means the worker's own copy; pass pointers.
  const float* q_all = q.data();
  float* attn_all = attn.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int h = 0; h < nh; ++h) {
      const int kvh = h / n_rep;
      StridedConstMap qh(q_all + (b * S * nh + h) * d, S, d, Eigen::OuterStride<>(nh * d));
      Eigen::Map<const RowMatrix> kh(cache.keys(layer, b, kvh), keys_total, d);
      Eigen::Map<const RowMatrix> vh(cache.values(layer, b, kvh), keys_total, d);
      thread_local RowMatrix scores;  // [S, P+S]
      scores.noalias() = (qh * kh.transpose()) * inv_sqrt_d;
      const uint8_t* key_real = cache.key_mask(b);
      for (int64_t s = 0; s < S; ++s) {
        float* row = scores.data() + s * keys_total;
        for (int64_t j = 0; j < keys_total; ++j)
          if (j > P + s || !key_real[j]) row[j] = kMasked;
        MaskedSoftmax(row, keys_total);
      }
      StridedMap oh(attn_all + (b * S * nh + h) * d, S, d, Eigen::OuterStride<>(nh * d));
      oh.noalias() = scores * vh;
    }
  }
  MatMulTransposed(attn.data(), T, w.o, out);
  AddBias(out, T, w.o_bias);
}

}  // namespace moe
