// The config.json keys of Mixtral, OLMoE, Qwen2-MoE, Qwen3-MoE, Granite-MoE and dots1, turned
// into the fields of one model description (docs/model-families.md §3–§8, §11). Keys whose
// defaults differ between families or upstream versions (norm_topk_prob, expert counts, group
// sizes, multipliers) must be given; keys that would change the computation in a way the engine
// does not implement are refused.
#include <algorithm>
#include <set>

#include "core/config_keys.h"

namespace moe {
namespace {

bool Among(Family f, std::initializer_list<Family> families) {
  return std::find(families.begin(), families.end(), f) != families.end();
}

// Router and expert keys shared by every family here.
void ReadExperts(const KeyReader& r, ModelConfig& c, const char* count_key, const char* width_key) {
  c.num_experts = r.Int(count_key, std::nullopt, 1, kMaxExperts);
  c.num_selects = r.Int("num_experts_per_tok", std::nullopt, 1);
  if (c.num_selects > c.num_experts)
    r.Bad("num_experts_per_tok", "is " + std::to_string(c.num_selects) + ", more than " +
                                     count_key + " = " + std::to_string(c.num_experts));
  const int width = r.Int(width_key, std::nullopt, 1);
  c.size_experts.assign(c.num_hidden_layers, std::vector<int>(c.num_experts, width));
  c.score_scale_factor.assign(c.num_hidden_layers, 1.0f);
  c.gate_network = GateNetwork::kLinear;
  c.multiply_gate_scores = true;
}

// Qwen's dense-layer rule (Qwen2MoeDecoderLayer.__init__): a layer is MoE unless listed in
// mlp_only_layers, and only every decoder_sparse_step-th layer (counting from 1) is.
void ReadQwenLayerKinds(const KeyReader& r, ModelConfig& c) {
  const int step = r.Int("decoder_sparse_step", 1, 1);
  const std::vector<int> dense = r.IntList("mlp_only_layers", 0, c.num_hidden_layers - 1);
  if (std::set<int>(dense.begin(), dense.end()).size() != dense.size())
    r.Bad("mlp_only_layers", "lists a layer twice");
  for (int l = 0; l < c.num_hidden_layers; ++l)
    c.moe_layer[l] = std::find(dense.begin(), dense.end(), l) == dense.end() && (l + 1) % step == 0;
  if (r.Bool("use_sliding_window", false))
    r.Bad("use_sliding_window", "is true; Qwen's sliding-window layers are not supported");
}

void ReadNormTopk(const KeyReader& r, ModelConfig& c, float epsilon) {
  c.renormalize = r.Bool("norm_topk_prob");
  c.renormalize_epsilon = epsilon;
}

// LLaMA-MoE-v2 ships in the Mixtral architecture with keys plain Mixtral lacks
// (docs/model-families.md §3.5): its scale factor multiplies every combine weight; the dense
// "contract" layers, the residual MLP, rescale biases and attention experts are refused rather
// than silently dropped.
void ReadLlamaMoeV2Keys(const KeyReader& r, ModelConfig& c) {
  const float scale = r.Float("scale_factor", 1.0f);
  if (!(scale > 0)) r.Bad("scale_factor", "must be > 0");
  c.score_scale_factor.assign(c.num_hidden_layers, scale);
  if (r.Int("num_moe_contract_layers", 0, 0) != 0)
    r.Bad("num_moe_contract_layers",
          "is not 0; LLaMA-MoE-v2's dense contract layers are not supported");
  if (r.Has("intermediate_size_residual"))
    r.Bad("intermediate_size_residual", "is set; LLaMA-MoE-v2's residual MLP is not supported");
  if (r.Bool("add_rescale_bias", false))
    r.Bad("add_rescale_bias", "is true; LLaMA-MoE-v2's rescale biases are not supported");
  if (r.Bool("use_attn_moe", false))
    r.Bad("use_attn_moe", "is true; attention experts are not supported");
  if (r.String("moe_type", "modulelist") != "modulelist")
    r.Bad("moe_type", "is not \"modulelist\", the only implementation LLaMA-MoE-v2 has");
}

void ReadMixtral(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "num_local_experts", "intermediate_size");
  c.router_score = RouterScore::kSoftmax;
  c.renormalize = true;
  c.qkv_bias = c.o_bias = false;  // MixtralAttention has no biases, whatever attention_bias says
  if (r.Has("sliding_window"))
    c.sliding_window.assign(c.num_hidden_layers, r.Int("sliding_window", std::nullopt, 1));
  ReadLlamaMoeV2Keys(r, c);
}

void ReadOlmoe(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "num_experts", "intermediate_size");
  c.router_score = RouterScore::kSoftmax;
  ReadNormTopk(r, c, 0.0f);
  c.qk_norm = QkNorm::kFullWidth;
  if (r.Has("clip_qkv")) {
    c.clip_qkv = r.Float("clip_qkv");
    if (!(c.clip_qkv > 0)) r.Bad("clip_qkv", "must be > 0 or null");
  }
}

void ReadQwen2Moe(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "num_experts", "moe_intermediate_size");
  c.router_score = RouterScore::kSoftmax;
  ReadNormTopk(r, c, 0.0f);
  ReadQwenLayerKinds(r, c);
  // Qwen2MoeAttention: biases on q, k and v (the key exists only in some versions), none on o.
  c.qkv_bias = r.Bool("qkv_bias", true);
  c.o_bias = false;
  if (c.explicit_head_dim != 0 && c.query_width() != c.hidden_size)
    r.Bad("head_dim", "times num_attention_heads must equal hidden_size in qwen2_moe");
  c.shared_expert_width = r.Int("shared_expert_intermediate_size", std::nullopt, 1);
  c.shared_expert_gated = true;
}

void ReadQwen3Moe(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "num_experts", "moe_intermediate_size");
  c.router_score = RouterScore::kSoftmax;
  ReadNormTopk(r, c, 0.0f);
  ReadQwenLayerKinds(r, c);
  c.qk_norm = QkNorm::kPerHead;
  if (c.explicit_head_dim == 0) r.Bad("head_dim", "is missing");
}

void ReadGraniteMoe(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "num_local_experts", "intermediate_size");
  c.router_score = RouterScore::kLogits;  // top-k of the logits, softmax over the k
  c.gate_use_softmax = true;
  c.embedding_multiplier = r.Float("embedding_multiplier");
  c.residual_multiplier = r.Float("residual_multiplier");
  c.attention_multiplier = r.Float("attention_multiplier");
  c.logits_scaling = r.Float("logits_scaling");
  for (auto [key, value] : {std::pair{"embedding_multiplier", c.embedding_multiplier},
                            {"residual_multiplier", c.residual_multiplier},
                            {"attention_multiplier", c.attention_multiplier},
                            {"logits_scaling", c.logits_scaling}})
    if (!(value > 0)) r.Bad(key, "must be > 0");
}

// dots1: Qwen3-style attention and the DeepSeek-V3 router (Dots1TopkRouter, Dots1MoE).
void ReadDots1(const KeyReader& r, ModelConfig& c) {
  ReadExperts(r, c, "n_routed_experts", "moe_intermediate_size");
  c.router_score = RouterScore::kSigmoid;
  c.selection_bias = true;
  ReadNormTopk(r, c, 1e-20f);
  c.router_groups = r.Int("n_group", std::nullopt, 1);
  c.router_topk_groups = r.Int("topk_group", std::nullopt, 1);
  const float scale = r.Float("routed_scaling_factor", std::nullopt, 0.0f);
  c.score_scale_factor.assign(c.num_hidden_layers, scale);
  c.qk_norm = QkNorm::kPerHead;
  const int shared = r.Int("n_shared_experts", 0, 0);
  c.shared_expert_width = shared * c.size_experts[0][0];
  const int dense = r.Int("first_k_dense_replace", std::nullopt, 0, c.num_hidden_layers);
  for (int l = 0; l < dense; ++l) c.moe_layer[l] = 0;

  const int groups = c.router_groups, e = c.num_experts;
  if (e % groups != 0)
    r.Bad("n_group",
          std::to_string(groups) + " does not divide n_routed_experts " + std::to_string(e));
  if (e / groups < 2)
    r.Bad("n_group", "leaves fewer than 2 experts per group (scores are top-2 sums)");
  if (c.router_topk_groups > groups)
    r.Bad("topk_group", "is " + std::to_string(c.router_topk_groups) + ", more than n_group " +
                            std::to_string(groups));
  if (c.num_selects > c.router_topk_groups * (e / groups))
    r.Bad("num_experts_per_tok", "is more than the experts in topk_group groups");

  // Sliding layers: listed in layer_types, or (older configs) every layer from max_window_layers.
  if (r.Has("layer_types")) {
    const nlohmann::json& types = r.At("layer_types");
    if (!types.is_array() || static_cast<int>(types.size()) != c.num_hidden_layers)
      r.Bad("layer_types", "must list num_hidden_layers entries");
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string key = "layer_types[" + std::to_string(l) + "]";
      const std::string t = types[l].is_string() ? types[l].get<std::string>() : "";
      if (t == "sliding_attention") {
        c.sliding_window[l] = r.Int("sliding_window", std::nullopt, 1);
      } else if (t != "full_attention") {
        r.Bad(key, "must be 'full_attention' or 'sliding_attention', got " + Shown(types[l]));
      }
    }
  } else if (r.Has("sliding_window")) {
    const int window = r.Int("sliding_window", std::nullopt, 1);
    const int first = r.Int("max_window_layers", std::nullopt, 0);
    for (int l = first; l < c.num_hidden_layers; ++l) c.sliding_window[l] = window;
  }
}

}  // namespace

void ReadFamilyKeys(const KeyReader& r, ModelConfig& c) {
  switch (c.family) {
    case Family::kMixtral:
      ReadMixtral(r, c);
      break;
    case Family::kOlmoe:
      ReadOlmoe(r, c);
      break;
    case Family::kQwen2Moe:
      ReadQwen2Moe(r, c);
      break;
    case Family::kQwen3Moe:
      ReadQwen3Moe(r, c);
      break;
    case Family::kGraniteMoe:
      ReadGraniteMoe(r, c);
      break;
    case Family::kDots1:
      ReadDots1(r, c);
      break;
    case Family::kLlamaMoe:
    case Family::kLlama:
      break;
  }
  if (std::none_of(c.moe_layer.begin(), c.moe_layer.end(), [](uint8_t m) { return m != 0; }))
    Fail(r.where(),
         "has no MoE layer (mlp_only_layers, decoder_sparse_step or "
         "first_k_dense_replace make every layer dense)");
}

void RefuseForeignKeys(const KeyReader& r, Family family) {
  using F = Family;
  struct Owned {
    const char* key;
    std::initializer_list<Family> owners;
  };
  static const Owned kKeys[] = {
      {"num_selects", {F::kLlamaMoe}},
      {"gate_network", {F::kLlamaMoe}},
      {"score_scale_factor", {F::kLlamaMoe}},
      {"num_local_experts", {F::kMixtral, F::kGraniteMoe}},
      {"scale_factor", {F::kMixtral}},  // LLaMA-MoE-v2
      {"num_moe_contract_layers", {F::kMixtral}},
      {"intermediate_size_residual", {F::kMixtral}},
      {"num_experts", {F::kLlamaMoe, F::kOlmoe, F::kQwen2Moe, F::kQwen3Moe}},
      {"clip_qkv", {F::kOlmoe}},
      {"shared_expert_intermediate_size", {F::kQwen2Moe}},
      {"decoder_sparse_step", {F::kQwen2Moe, F::kQwen3Moe}},
      {"mlp_only_layers", {F::kQwen2Moe, F::kQwen3Moe}},
      {"embedding_multiplier", {F::kGraniteMoe}},
      {"residual_multiplier", {F::kGraniteMoe}},
      {"attention_multiplier", {F::kGraniteMoe}},
      {"logits_scaling", {F::kGraniteMoe}},
      {"n_routed_experts", {F::kDots1}},
      {"n_group", {F::kDots1}},
      {"topk_group", {F::kDots1}},
      {"routed_scaling_factor", {F::kDots1}},
      {"n_shared_experts", {F::kDots1}},
      {"first_k_dense_replace", {F::kDots1}},
  };
  for (const Owned& o : kKeys) {
    if (!r.Has(o.key) || Among(family, o.owners)) continue;
    std::string owners;
    for (Family f : o.owners) owners += std::string(owners.empty() ? "" : ", ") + FamilyName(f);
    r.Bad(o.key, std::string("belongs to ") + owners + " configs, not to model_type '" +
                     FamilyName(family) + "' (a config mixing families?)");
  }
}

}  // namespace moe
