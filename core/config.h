#pragma once
// LlamaMoEConfig (and plain LLaMA configs) as read from a Hugging Face config.json.
// Every key that changes the forward pass is a field here; see docs/config.md.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe {

enum class RopeScaling { kNone, kLinear, kDynamic };
enum class GateNetwork { kMlp, kLinear };
// Which head sits on top of the body, from config.json "architectures".
enum class Architecture { kCausalLM, kModel, kSequenceClassification, kQuestionAnswering };

struct ModelConfig {
  std::string model_type;  // "llama_moe", or "llama" for dense checkpoints
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
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  int pretraining_tp = 1;
  int bos_token_id = 1;
  int eos_token_id = 2;
  int pad_token_id = 0;
  bool has_pad_token = true;        // "pad_token_id": null clears it
  int num_labels = 2;               // sequence classification
  std::vector<std::string> labels;  // id2label names, [num_labels] ("LABEL_i" if absent)

  // MoE (for model_type "llama" these describe one dense expert per layer).
  bool is_moe = true;
  int num_experts = 1;
  int num_selects = 1;                         // K
  std::vector<std::vector<int>> size_experts;  // [layer][expert], always filled
  GateNetwork gate_network = GateNetwork::kMlp;
  bool gate_use_softmax = true;
  bool gate_add_noise = false;  // only decides whether weight_noise exists
  bool multiply_gate_scores = true;
  std::vector<float> score_scale_factor;  // [layer], always filled
  std::string gate_type;
  std::string calculator_type;

  int head_dim() const { return hidden_size / num_attention_heads; }
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

}  // namespace moe
