#pragma once
// The model description: what one forward pass needs to know about a model, read from a Hugging
// Face config.json of any supported family (LLaMA-MoE, LLaMA, Mixtral, OLMoE, Qwen2-MoE,
// Qwen3-MoE, Granite-MoE, dots1). Nothing downstream branches on the family: every difference
// between families is a field here (docs/config.md, docs/model-families.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe {

enum class RopeScaling { kNone, kLinear, kDynamic };
enum class GateNetwork { kMlp, kLinear };
// The config's model_type: which parser read it and which tensor names its checkpoint uses.
enum class Family {
  kLlamaMoe,
  kLlama,
  kMixtral,
  kOlmoe,
  kQwen2Moe,
  kQwen3Moe,
  kGraniteMoe,
  kDots1
};
// RMSNorm on queries and keys after their projections: over the whole projection (OLMoE) or
// over each head (Qwen3, dots1).
enum class QkNorm { kNone, kFullWidth, kPerHead };
// What the router turns its logits z into before choosing (docs/model-families.md §2):
//   kLogits   choose the top-k of z; weights softmax(z_S) (or z_S raw)   LLaMA-MoE, Granite
//   kSoftmax  p = softmax(z) over all E; choose the top-k of p; weights p_S  Mixtral, OLMoE, Qwen
//   kSigmoid  s = sigmoid(z); choose on s + selection bias, group-limited;  dots1 (DeepSeek-V3)
//             weights s_S
enum class RouterScore { kLogits, kSoftmax, kSigmoid };
// Which head sits on top of the body, from config.json "architectures".
enum class Architecture { kCausalLM, kModel, kSequenceClassification, kQuestionAnswering };

struct ModelConfig {
  std::string model_type;  // as config.json names it: "llama_moe", "mixtral", "qwen2_moe", ...
  Family family = Family::kLlamaMoe;
  Architecture architecture = Architecture::kCausalLM;

  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_scaling_factor = 1.0f;
  bool qkv_bias = false;      // biases on q_proj, k_proj, v_proj
  bool o_bias = false;        // bias on o_proj
  int explicit_head_dim = 0;  // config "head_dim" when heads x head_dim may differ from hidden_size
  QkNorm qk_norm = QkNorm::kNone;
  float clip_qkv = 0.0f;              // > 0: q, k and v clamped to [-clip, clip] (OLMoE)
  std::vector<int> sliding_window;    // [layer]: keys i - W < j <= i only; 0 = every earlier key
  float attention_multiplier = 0.0f;  // score scale; 0 = 1/sqrt(head_dim) (Granite sets it)
  float embedding_multiplier = 1.0f;  // embeddings x this (Granite)
  float residual_multiplier = 1.0f;   // both branches x this before the residual add (Granite)
  float logits_scaling = 1.0f;        // logits / this (Granite)
  bool tie_word_embeddings = false;
  int pretraining_tp = 1;
  int bos_token_id = 1;
  int eos_token_id = 2;
  int pad_token_id = 0;
  bool has_pad_token = true;        // "pad_token_id": null clears it
  int num_labels = 2;               // sequence classification
  std::vector<std::string> labels;  // id2label names, [num_labels] ("LABEL_i" if absent)

  // MoE (for model_type "llama" these describe one dense expert per layer).
  bool is_moe = true;              // some layer routes (false: a dense LLaMA)
  std::vector<uint8_t> moe_layer;  // [layer]: 1 = MoE block, 0 = dense SwiGLU of intermediate_size
  int num_experts = 1;
  int num_selects = 1;                         // K
  std::vector<std::vector<int>> size_experts;  // [layer][expert], always filled (MoE widths)
  GateNetwork gate_network = GateNetwork::kMlp;
  RouterScore router_score = RouterScore::kLogits;
  bool gate_use_softmax = true;  // kLogits: weights softmax(z_S), else the raw z_S
  bool renormalize = false;      // weights / (their sum + renormalize_epsilon)
  float renormalize_epsilon = 0.0f;
  bool selection_bias = false;  // kSigmoid: e_score_correction_bias added for choosing only
  int router_groups = 1;        // kSigmoid: experts in this many contiguous groups ...
  int router_topk_groups = 1;   // ... of which the best (sum of their top-2 keys) stay eligible
  bool gate_add_noise = false;  // only decides whether weight_noise exists
  bool multiply_gate_scores = true;
  std::vector<float> score_scale_factor;  // [layer], always filled (routed_scaling_factor, ...)
  // Shared experts: a SwiGLU of this width that every token takes in every MoE layer, added to
  // the routed output, times sigmoid(shared_expert_gate . u) when gated (Qwen2-MoE).
  int shared_expert_width = 0;
  bool shared_expert_gated = false;

  // Whether layer routes; an empty moe_layer (a config built in code) means every layer does.
  bool IsMoeLayer(int layer) const {
    return is_moe && (moe_layer.empty() || moe_layer[layer] != 0);
  }
  // The layer's sliding window W (keys i - W < j <= i), 0 for full causal attention.
  int SlidingWindow(int layer) const { return sliding_window.empty() ? 0 : sliding_window[layer]; }
  std::string gate_type;
  std::string calculator_type;

  int head_dim() const {
    return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_attention_heads;
  }
  int query_width() const { return num_attention_heads * head_dim(); }  // q_proj rows
  // Longest sequence the model is meant to see: max_position_embeddings, stretched by the
  // rope_scaling factor when scaling is configured. The default window of scoring and traces.
  int64_t context_length() const;
  // Longest sequence (cached + new tokens) the engine runs. Upstream refuses no length: dynamic
  // NTK exists to go past the trained length, and linear scaling divides any position. With
  // rope_scaling configured there is therefore no limit (INT64_MAX); without it, sequences past
  // max_position_embeddings are refused (see docs/engine.md, RoPE scaling).
  int64_t max_sequence_length() const;

  // Parses and validates; errors name the file and key, e.g.
  // "config.json: size_experts[3] sums to 11000, expected intermediate_size 11008".
  static ModelConfig FromJson(const nlohmann::json& j, const std::string& where);
  static ModelConfig FromFile(const std::filesystem::path& config_json);

  // Total parameters, and parameters touched per token (embeddings and lm_head included).
  int64_t TotalParameters() const;
  int64_t ActivatedParameters() const;
};

const char* ArchitectureName(Architecture a);
const char* FamilyName(Family f);  // the config's model_type

}  // namespace moe
