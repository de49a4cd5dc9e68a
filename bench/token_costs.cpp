#include "bench/token_costs.h"

#include <algorithm>

namespace moe::bench {
namespace {

double ExpertBytes(const ExpertWeights& e) {
  return static_cast<double>(e.gate.nbytes() + e.up.nbytes() + e.down.nbytes());
}

}  // namespace

double DecodeBytesPerToken(const MoeModel& model, double mean_position, KvCacheType kv_cache) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  double bytes = 0;
  for (const LayerWeights& l : w.layers) {
    bytes += static_cast<double>(l.q.nbytes() + l.k.nbytes() + l.v.nbytes() + l.o.nbytes() +
                                 l.router_in.nbytes() + l.router_out.nbytes() +
                                 l.shared_expert_gate.nbytes());
    double experts = 0;
    for (const ExpertWeights& e : l.experts) experts += ExpertBytes(e);
    // A dense layer (no router: dots1's first layers, Qwen's mlp_only_layers) runs its one MLP.
    const int active = l.router_in.empty() ? 1 : c.num_selects;
    bytes +=
        experts / static_cast<double>(l.experts.size()) * active + ExpertBytes(l.shared_expert);
  }
  bytes += static_cast<double>(w.lm_head.nbytes());
  bytes += static_cast<double>(w.embed.nbytes()) / static_cast<double>(w.embed.rows);
  const double element = kv_cache == KvCacheType::kBF16 ? 2 : 4;
  bytes +=
      2.0 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim() * mean_position * element;
  return bytes;
}

// FLOPs = 2 · A · T + Σ_layers 4 · n_heads · head_dim · Σ_{i<T} keys(i), where
//   A = the activated parameters per token (ModelConfig::ActivatedParameters: attention, routers,
//       the selected experts at the mean width, shared experts, lm_head), less the embedding
//       table, which is looked up, not multiplied; each parameter is one multiply-add per token.
//       Norm weights and biases (O(hidden) each) are counted too, a negligible excess;
//   keys(i) = the keys query i attends to, i + 1 (causal) or at most the sliding window; QKᵀ and
//       the probabilities times V are one multiply-add each per query, key and head dimension.
// Routing, softmax, RMSNorm and SwiGLU's elementwise work are left out (O(T · hidden)). This is
// the useful work: the fp32-accurate mode does the GEMM part twice (hi and lo halves), and the
// engine's causal blocks of 64 compute some masked scores, neither of which counts here.
double PrefillFlops(const ModelConfig& c, int64_t tokens) {
  const int64_t embedding =
      c.tie_word_embeddings ? 0 : int64_t{c.vocab_size} * int64_t{c.hidden_size};
  const double matmul =
      2.0 * static_cast<double>(c.ActivatedParameters() - embedding) * static_cast<double>(tokens);
  double attention = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const int64_t window = c.SlidingWindow(l);
    double keys = 0;
    for (int64_t i = 0; i < tokens; ++i)
      keys += static_cast<double>(window > 0 ? std::min(i + 1, window) : i + 1);
    attention += 4.0 * c.num_attention_heads * c.head_dim() * keys;
  }
  return matmul + attention;
}

}  // namespace moe::bench
