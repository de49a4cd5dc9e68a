#include "core/model_summary.h"

#include <cstdio>
#include <sstream>

namespace moe {
namespace {

std::string Number(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(x));
  return buf;
}

}  // namespace

std::string RouterRecipeText(const ModelConfig& c) {
  if (!c.is_moe) return "none (dense)";
  std::ostringstream s;
  const std::string k = "top-" + std::to_string(c.num_selects);
  switch (c.router_score) {
    case RouterScore::kLogits:
      s << (c.gate_network == GateNetwork::kMlp ? "mlp gate (Linear-Tanh-Linear), " : "") << k
        << " of the logits, "
        << (c.gate_use_softmax ? "softmax over the selected" : "raw selected logits");
      break;
    case RouterScore::kSoftmax:
      s << "softmax over " << c.num_experts << ", " << k << " of the scores";
      break;
    case RouterScore::kSigmoid:
      s << "sigmoid, " << k << " of score" << (c.selection_bias ? " + selection bias" : "");
      if (c.router_groups > 1)
        s << " within the best " << c.router_topk_groups << " of " << c.router_groups << " groups";
      break;
  }
  if (c.renormalize) s << ", renormalized";
  if (c.multiply_gate_scores) {
    bool same = true;
    for (float f : c.score_scale_factor) same = same && f == c.score_scale_factor[0];
    if (!same)
      s << ", x a per-layer scale";
    else if (c.score_scale_factor[0] != 1.0f)
      s << ", x " << Number(c.score_scale_factor[0]);
  } else {
    s << ", weights unused (multiply_gate_scores false)";
  }
  return s.str();
}

std::string AttentionText(const ModelConfig& c) {
  std::ostringstream s;
  s << (c.num_key_value_heads == c.num_attention_heads ? "MHA " : "GQA ") << c.num_attention_heads
    << "/" << c.num_key_value_heads << ", head dim " << c.head_dim();
  if (c.qkv_bias) s << ", q/k/v bias";
  if (c.o_bias) s << ", o bias";
  if (c.qk_norm == QkNorm::kFullWidth) s << ", q/k RMSNorm over the projection";
  if (c.qk_norm == QkNorm::kPerHead) s << ", q/k RMSNorm per head";
  if (c.clip_qkv > 0) s << ", clip_qkv " << Number(c.clip_qkv);
  if (c.attention_multiplier > 0) s << ", score scale " << Number(c.attention_multiplier);
  int windowed = 0, window = 0;
  for (int w : c.sliding_window)
    if (w > 0) ++windowed, window = w;
  if (windowed == c.num_hidden_layers)
    s << ", sliding window " << window;
  else if (windowed > 0)
    s << ", sliding window " << window << " on " << windowed << " layers";
  return s.str();
}

std::string LayerKindsText(const ModelConfig& c) {
  if (!c.is_moe) return "all dense";
  std::string dense;
  int dense_count = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    if (!c.IsMoeLayer(l)) dense += (dense_count++ ? ", " : "") + std::to_string(l);
  if (dense_count == 0) return "all MoE";
  return "dense: " + dense + "; MoE: the other " +
         std::to_string(c.num_hidden_layers - dense_count);
}

std::string SharedExpertText(const ModelConfig& c) {
  if (c.shared_expert_width == 0) return "none";
  return "width " + std::to_string(c.shared_expert_width) +
         (c.shared_expert_gated ? ", sigmoid-gated" : ", ungated");
}

}  // namespace moe
