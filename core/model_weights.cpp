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

ModelWeights LoadModelWeights(const Checkpoint& ck, const ModelConfig& c, ValueCheck check) {
  const int64_t h = c.hidden_size, d = c.head_dim(), e = c.num_experts;
  const int64_t q_out = c.num_attention_heads * d, kv_out = c.num_key_value_heads * d;
  const std::string body = BodyPrefix(c);
  std::vector<std::string> used;  // checked for non-finite values at the end, in one scan
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    used.push_back(name);
    return AsMatrix(ck.Require(name, {rows, cols}));
  };
  auto vector = [&](const std::string& name, int64_t size) {
    used.push_back(name);
    return AsVector(ck.Require(name, {size}));
  };

  ModelWeights w;
  w.embed = matrix(body + "embed_tokens.weight", c.vocab_size, h);
  w.final_norm = vector(body + "norm.weight", h);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = body + "layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.input_norm = vector(p + "input_layernorm.weight", h);
    lw.post_attention_norm = vector(p + "post_attention_layernorm.weight", h);
    lw.q = matrix(p + "self_attn.q_proj.weight", q_out, h);
    lw.k = matrix(p + "self_attn.k_proj.weight", kv_out, h);
    lw.v = matrix(p + "self_attn.v_proj.weight", kv_out, h);
    lw.o = matrix(p + "self_attn.o_proj.weight", h, q_out);
    if (c.attention_bias) {
      lw.q_bias = vector(p + "self_attn.q_proj.bias", q_out);
      lw.k_bias = vector(p + "self_attn.k_proj.bias", kv_out);
      lw.v_bias = vector(p + "self_attn.v_proj.bias", kv_out);
      lw.o_bias = vector(p + "self_attn.o_proj.bias", h);
    }
    if (!c.is_moe) {
      const int64_t width = c.intermediate_size;
      lw.experts.push_back({matrix(p + "mlp.gate_proj.weight", width, h),
                            matrix(p + "mlp.up_proj.weight", width, h),
                            matrix(p + "mlp.down_proj.weight", h, width)});
    } else {
      if (c.gate_network == GateNetwork::kMlp) {
        lw.router_in = matrix(p + "mlp.gate.gate_network.0.weight", e, h);
        lw.router_out = matrix(p + "mlp.gate.gate_network.2.weight", e, e);
      } else {
        lw.router_in = matrix(p + "mlp.gate.gate_network.weight", e, h);
      }
      const std::string ex = p + "mlp.calculator.experts.";
      for (int i = 0; i < e; ++i) {
        const int64_t width = c.size_experts[l][i];
        const std::string s = std::to_string(i);
        lw.experts.push_back({matrix(ex + "weight_gate." + s, width, h),
                              matrix(ex + "weight_up." + s, width, h),
                              matrix(ex + "weight_down." + s, h, width)});
      }
    }
    w.layers.push_back(std::move(lw));
  }

  switch (c.architecture) {
    case Architecture::kCausalLM:
      w.lm_head = c.tie_word_embeddings ? w.embed : matrix("lm_head.weight", c.vocab_size, h);
      break;
    case Architecture::kModel:
      break;
    case Architecture::kSequenceClassification:
      w.score = matrix("score.weight", c.num_labels, h);
      break;
    case Architecture::kQuestionAnswering:
      w.qa_outputs = matrix("qa_outputs.weight", 2, h);
      w.qa_bias = vector("qa_outputs.bias", 2);
      break;
  }
  if (check == ValueCheck::kFinite) ck.RequireFinite(used);
  return w;
}

}  // namespace moe
