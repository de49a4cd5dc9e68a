// Parameter counts of a model description (docs/model-families.md §12): what `moescope info`
// reports as total and activated per token. Activated counts include the embedding, the head,
// the routers and the shared experts, as published "activated" figures do; a tied head counts
// once in both.
#include <numeric>

#include "core/config.h"

namespace moe {
namespace {

struct LayerCounts {
  int64_t total = 0;
  int64_t activated = 0;
};

LayerCounts CountLayer(const ModelConfig& c, int l) {
  const int64_t h = c.hidden_size, d = c.head_dim();
  const int64_t q = c.query_width(), kv = int64_t{c.num_key_value_heads} * d;
  int64_t attention = h * q + 2 * h * kv + q * h;
  if (c.qkv_bias) attention += q + 2 * kv;
  if (c.o_bias) attention += h;
  if (c.qk_norm == QkNorm::kFullWidth) attention += q + kv;
  if (c.qk_norm == QkNorm::kPerHead) attention += 2 * d;
  const int64_t shared = attention + 2 * h;  // + the two norms
  if (!c.IsMoeLayer(l)) {
    const int64_t dense = 3 * h * c.intermediate_size;
    return {shared + dense, shared + dense};
  }
  const int64_t e = c.num_experts;
  int64_t router = e * h;
  if (c.gate_network == GateNetwork::kMlp) router += e * e;
  if (c.selection_bias) router += e;
  int64_t always = router;
  if (c.shared_expert_width > 0)
    always += 3 * h * c.shared_expert_width + (c.shared_expert_gated ? h : 0);
  // Experts of one layer may differ in width (LLaMA-MoE); the activated count takes the average
  // expert K times.
  const int64_t width = std::accumulate(c.size_experts[l].begin(), c.size_experts[l].end(), 0L);
  const int64_t noise = c.gate_add_noise ? e * h : 0;  // stored, never used at inference
  return {shared + always + noise + 3 * h * width,
          shared + always + 3 * h * width * c.num_selects / e};
}

int64_t EmbeddingsAndHead(const ModelConfig& c) {
  const int64_t vh = int64_t{c.vocab_size} * c.hidden_size;
  return (c.tie_word_embeddings ? vh : 2 * vh) + c.hidden_size;  // + the final norm
}

}  // namespace

int64_t ModelConfig::TotalParameters() const {
  int64_t total = EmbeddingsAndHead(*this);
  for (int l = 0; l < num_hidden_layers; ++l) total += CountLayer(*this, l).total;
  return total;
}

int64_t ModelConfig::ActivatedParameters() const {
  int64_t total = EmbeddingsAndHead(*this);
  for (int l = 0; l < num_hidden_layers; ++l) total += CountLayer(*this, l).activated;
  return total;
}

}  // namespace moe
