#include "core/model_weights.h"

#include "core/error.h"

namespace moe {
namespace {

Matrix AsMatrix(const TensorView& t) {
  return {t.dtype, t.data, t.shape[0], t.shape[1]};
}
Vector AsVector(const TensorView& t) {
  return {t.dtype, t.data, t.shape[0]};
}

}  // namespace

float Vector::at(int64_t i) const {
  float f;
  ToF32(dtype, static_cast<const uint8_t*>(data) + i * DTypeSize(dtype), &f, 1);
  return f;
}

std::string BodyPrefix(const ModelConfig& config) {
  return config.architecture == Architecture::kQuestionAnswering ? "transformer." : "model.";
}

namespace {

// Collects the tensors the description calls for, checking each one's dtype and shape, and
// remembers their names for the one finite-value scan at the end.
class TensorLoader {
 public:
  explicit TensorLoader(const Checkpoint& ck) : ck_(ck) {}
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    used_.push_back(name);
    return AsMatrix(ck_.Require(name, {rows, cols}));
  }
  Vector vector(const std::string& name, int64_t size) {
    used_.push_back(name);
    return AsVector(ck_.Require(name, {size}));
  }
  // A SwiGLU MLP stored as three nn.Linear weights (gate, up, down).
  ExpertWeights mlp(const std::string& gate, const std::string& up, const std::string& down,
                    int64_t width, int64_t h) {
    return {matrix(gate, width, h), matrix(up, width, h), matrix(down, h, width)};
  }
  // Granite-MoE's experts, fused: input_linear [E, 2F, H] (each expert's gate rows, then its up
  // rows) and output_linear [E, H, F]. The views point into the two tensors.
  std::vector<ExpertWeights> fused_experts(const std::string& input, const std::string& output,
                                           int64_t e, int64_t f, int64_t h) {
    used_.push_back(input);
    used_.push_back(output);
    const TensorView in = ck_.Require(input, {e, 2 * f, h});
    const TensorView out = ck_.Require(output, {e, h, f});
    const size_t elem = DTypeSize(in.dtype);
    auto at = [](const TensorView& t, size_t bytes) {
      return static_cast<const uint8_t*>(t.data) + bytes;
    };
    std::vector<ExpertWeights> experts;
    for (int64_t i = 0; i < e; ++i) {
      const size_t base = static_cast<size_t>(i * 2 * f * h) * elem;
      experts.push_back(
          {{in.dtype, at(in, base), f, h},
           {in.dtype, at(in, base + static_cast<size_t>(f * h) * elem), f, h},
           {out.dtype, at(out, static_cast<size_t>(i * h * f) * DTypeSize(out.dtype)), h, f}});
    }
    return experts;
  }
  const std::vector<std::string>& used() const { return used_; }

 private:
  const Checkpoint& ck_;
  std::vector<std::string> used_;
};

void LoadAttention(TensorLoader& t, const ModelConfig& c, const std::string& p, LayerWeights& lw) {
  const int64_t h = c.hidden_size, d = c.head_dim();
  const int64_t q_out = c.query_width(), kv_out = c.num_key_value_heads * d;
  lw.q = t.matrix(p + "self_attn.q_proj.weight", q_out, h);
  lw.k = t.matrix(p + "self_attn.k_proj.weight", kv_out, h);
  lw.v = t.matrix(p + "self_attn.v_proj.weight", kv_out, h);
  lw.o = t.matrix(p + "self_attn.o_proj.weight", h, q_out);
  if (c.qkv_bias) {
    lw.q_bias = t.vector(p + "self_attn.q_proj.bias", q_out);
    lw.k_bias = t.vector(p + "self_attn.k_proj.bias", kv_out);
    lw.v_bias = t.vector(p + "self_attn.v_proj.bias", kv_out);
  }
  if (c.o_bias) lw.o_bias = t.vector(p + "self_attn.o_proj.bias", h);
  if (c.qk_norm != QkNorm::kNone) {
    const bool full = c.qk_norm == QkNorm::kFullWidth;
    lw.q_norm = t.vector(p + "self_attn.q_norm.weight", full ? q_out : d);
    lw.k_norm = t.vector(p + "self_attn.k_norm.weight", full ? kv_out : d);
  }
}

// The routed experts and router of one MoE layer, by the family's tensor names
// (docs/model-families.md: §3.4 Mixtral, §4.4 OLMoE, §5.5 Qwen2-MoE, §6.4 Qwen3-MoE, §7.4
// Granite-MoE, §8.6 the DeepSeek-V3 names dots1 shares).
void LoadMoeBlock(TensorLoader& t, const ModelConfig& c, const std::string& p, int l,
                  LayerWeights& lw) {
  const int64_t h = c.hidden_size, e = c.num_experts;
  switch (c.family) {
    case Family::kLlamaMoe: {
      if (c.gate_network == GateNetwork::kMlp) {
        lw.router_in = t.matrix(p + "mlp.gate.gate_network.0.weight", e, h);
        lw.router_out = t.matrix(p + "mlp.gate.gate_network.2.weight", e, e);
      } else {
        lw.router_in = t.matrix(p + "mlp.gate.gate_network.weight", e, h);
      }
      const std::string ex = p + "mlp.calculator.experts.";
      for (int i = 0; i < e; ++i) {
        const std::string s = std::to_string(i);
        lw.experts.push_back(t.mlp(ex + "weight_gate." + s, ex + "weight_up." + s,
                                   ex + "weight_down." + s, c.size_experts[l][i], h));
      }
      return;
    }
    case Family::kMixtral: {
      const std::string b = p + "block_sparse_moe.";
      lw.router_in = t.matrix(b + "gate.weight", e, h);
      for (int i = 0; i < e; ++i) {
        const std::string x = b + "experts." + std::to_string(i) + ".";
        lw.experts.push_back(
            t.mlp(x + "w1.weight", x + "w3.weight", x + "w2.weight", c.size_experts[l][i], h));
      }
      return;
    }
    case Family::kGraniteMoe: {
      const std::string b = p + "block_sparse_moe.";
      lw.router_in = t.matrix(b + "router.layer.weight", e, h);
      lw.experts = t.fused_experts(b + "input_linear.weight", b + "output_linear.weight", e,
                                   c.size_experts[l][0], h);
      return;
    }
    case Family::kOlmoe:
    case Family::kQwen2Moe:
    case Family::kQwen3Moe:
    case Family::kDots1: {
      const std::string b = p + "mlp.";
      lw.router_in = t.matrix(b + "gate.weight", e, h);
      if (c.selection_bias) lw.selection_bias = t.vector(b + "gate.e_score_correction_bias", e);
      for (int i = 0; i < e; ++i) {
        const std::string x = b + "experts." + std::to_string(i) + ".";
        lw.experts.push_back(t.mlp(x + "gate_proj.weight", x + "up_proj.weight",
                                   x + "down_proj.weight", c.size_experts[l][i], h));
      }
      if (c.shared_expert_width > 0) {
        // Qwen2-MoE has one gated `shared_expert`; DeepSeek-style blocks `shared_experts`.
        const std::string s = b + (c.shared_expert_gated ? "shared_expert." : "shared_experts.");
        lw.shared_expert = t.mlp(s + "gate_proj.weight", s + "up_proj.weight",
                                 s + "down_proj.weight", c.shared_expert_width, h);
        if (c.shared_expert_gated)
          lw.shared_expert_gate = t.matrix(b + "shared_expert_gate.weight", 1, h);
      }
      return;
    }
    case Family::kLlama:
      break;
  }
  Fail(FamilyName(c.family), "has no MoE block");
}

}  // namespace

ModelWeights LoadModelWeights(const Checkpoint& ck, const ModelConfig& c, ValueCheck check) {
  const int64_t h = c.hidden_size;
  const std::string body = BodyPrefix(c);
  TensorLoader t(ck);

  ModelWeights w;
  w.embed = t.matrix(body + "embed_tokens.weight", c.vocab_size, h);
  w.final_norm = t.vector(body + "norm.weight", h);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = body + "layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.input_norm = t.vector(p + "input_layernorm.weight", h);
    lw.post_attention_norm = t.vector(p + "post_attention_layernorm.weight", h);
    LoadAttention(t, c, p, lw);
    if (c.IsMoeLayer(l)) {
      LoadMoeBlock(t, c, p, l, lw);
    } else {
      lw.experts.push_back(t.mlp(p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight",
                                 p + "mlp.down_proj.weight", c.intermediate_size, h));
    }
    w.layers.push_back(std::move(lw));
  }

  switch (c.architecture) {
    case Architecture::kCausalLM:
      w.lm_head = c.tie_word_embeddings ? w.embed : t.matrix("lm_head.weight", c.vocab_size, h);
      break;
    case Architecture::kModel:
      break;
    case Architecture::kSequenceClassification:
      w.score = t.matrix("score.weight", c.num_labels, h);
      break;
    case Architecture::kQuestionAnswering:
      w.qa_outputs = t.matrix("qa_outputs.weight", 2, h);
      w.qa_bias = t.vector("qa_outputs.bias", 2);
      break;
  }
  if (check == ValueCheck::kFinite) ck.RequireFinite(t.used());
  return w;
}

}  // namespace moe
