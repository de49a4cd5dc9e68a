#include "analysis/split/moe_config_json.h"

#include <string>

namespace moe {
namespace {

using nlohmann::json;

// Every LlamaMoEConfig key with upstream's default plus what save_pretrained adds
// (tests/reference/model_builder.py MOE_CONFIG_DEFAULTS); the dense fields and the split's
// settings are written over it.
json MoeConfigDefaults() {
  return {
      {"add_weight_norm", false},
      {"architectures", json::array({"LlamaMoEForCausalLM"})},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"auto_map",
       {{"AutoConfig", "configuration_llama_moe.LlamaMoEConfig"},
        {"AutoModel", "modeling_llama_moe_hf.LlamaMoEModel"},
        {"AutoModelForCausalLM", "modeling_llama_moe_hf.LlamaMoEForCausalLM"}}},
      {"bos_token_id", 1},
      {"calculator_type", "UniversalCalculator"},
      {"capacity_factor", 1.25},
      {"drop_tokens", true},
      {"dropped_padding", "zero"},
      {"eos_token_id", 2},
      {"gate_add_noise", true},
      {"gate_balance_loss_weight", 0.01},
      {"gate_network", "mlp"},
      {"gate_noise_epsilon", 0.01},
      {"gate_type", "TopKBalancedNoisyGate"},
      {"gate_use_balance", true},
      {"gate_use_softmax", true},
      {"hidden_act", "silu"},
      {"hidden_size", 64},
      {"initializer_range", 0.02},
      {"intermediate_size", 256},
      {"max_position_embeddings", 64},
      {"model_type", "llama_moe"},
      {"multiply_gate_scores", true},
      {"num_attention_heads", 4},
      {"num_experts", 8},
      {"num_hidden_layers", 2},
      {"num_key_value_heads", 4},
      {"num_selects", 2},
      {"pad_token_id", 0},
      {"pretraining_tp", 1},
      {"rms_norm_eps", 1e-06},
      {"rope_scaling", nullptr},
      {"rope_theta", 10000.0},
      {"score_scale_factor", 1.0},
      {"size_experts", nullptr},
      {"tie_word_embeddings", false},
      {"torch_dtype", "float32"},
      {"transformers_version", "4.36.2"},
      {"use_cache", true},
      {"vocab_size", 257},
  };
}

// The dense LlamaConfig fields the MoE config keeps (as the reference's moe_config_from_dense),
// plus the label names of a sequence classifier.
constexpr const char* kKeptDenseKeys[] = {"vocab_size",
                                          "hidden_size",
                                          "intermediate_size",
                                          "num_hidden_layers",
                                          "num_attention_heads",
                                          "num_key_value_heads",
                                          "max_position_embeddings",
                                          "rms_norm_eps",
                                          "rope_theta",
                                          "rope_scaling",
                                          "tie_word_embeddings",
                                          "bos_token_id",
                                          "eos_token_id",
                                          "pad_token_id",
                                          "initializer_range",
                                          "attention_bias",
                                          "pretraining_tp",
                                          "hidden_act",
                                          "id2label",
                                          "label2id",
                                          "num_labels"};

// Files beside the weights that the MoE folder needs to be opened on its own.
const char* TorchDtypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    default:
      return "float32";
  }
}

}  // namespace

json MoeConfigJson(const json& dense_json, const ModelConfig& dc, const std::vector<int>& sizes,
                   DType dtype, const ExpertSplitOptions& o) {
  json config = MoeConfigDefaults();
  for (const char* key : kKeptDenseKeys)
    if (dense_json.contains(key)) config[key] = dense_json.at(key);
  if (!dense_json.contains("num_key_value_heads") || dense_json["num_key_value_heads"].is_null())
    config["num_key_value_heads"] = dense_json.at("num_attention_heads");
  json size_experts = json::array();
  for (int l = 0; l < dc.num_hidden_layers; ++l) size_experts.push_back(sizes);
  config["architectures"] =
      json::array({std::string("LlamaMoE") + ArchitectureName(dc.architecture)});
  config["model_type"] = "llama_moe";
  config["num_experts"] = o.experts;
  config["num_selects"] = o.top_k;
  config["size_experts"] = size_experts;
  config["score_scale_factor"] =
      o.score_scale_factor.value_or(static_cast<double>(o.experts) / o.top_k);
  config["multiply_gate_scores"] = o.multiply_gate_scores;
  config["gate_network"] = "mlp";
  config["gate_add_noise"] = true;
  config["gate_use_softmax"] = true;
  config["gate_use_balance"] = true;
  config["gate_balance_loss_weight"] = 0.01;
  config["torch_dtype"] = TorchDtypeName(dtype);
  return config;
}

}  // namespace moe
