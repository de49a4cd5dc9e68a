#include "core/config.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <new>
#include <numeric>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/config_keys.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Each family's model_type and the class-name prefix of its `architectures` entry.
struct FamilyNames {
  Family family;
  const char* model_type;
  const char* class_prefix;
};
constexpr FamilyNames kFamilies[] = {
    {Family::kLlamaMoe, "llama_moe", "LlamaMoE"},      {Family::kLlama, "llama", "Llama"},
    {Family::kMixtral, "mixtral", "Mixtral"},          {Family::kOlmoe, "olmoe", "Olmoe"},
    {Family::kQwen2Moe, "qwen2_moe", "Qwen2Moe"},      {Family::kQwen3Moe, "qwen3_moe", "Qwen3Moe"},
    {Family::kGraniteMoe, "granitemoe", "GraniteMoe"}, {Family::kDots1, "dots1", "Dots1"},
};

const FamilyNames& NamesOf(Family f) {
  for (const FamilyNames& n : kFamilies)
    if (n.family == f) return n;
  return kFamilies[0];
}

// LLaMA-MoE checkpoints have all four heads; the other families are read as language models
// (or bodies).
Architecture ParseArchitecture(const KeyReader& r, const json& j, Family family) {
  if (!r.Has("architectures")) return Architecture::kCausalLM;
  const json& a = j.at("architectures");
  if (!a.is_array() || a.empty() || !a[0].is_string())
    r.Bad("architectures", "must be a list of class names, got " + Shown(a));
  const std::string name = a[0].get<std::string>();
  const bool llama = family == Family::kLlamaMoe || family == Family::kLlama;
  std::vector<std::string> prefixes{NamesOf(family).class_prefix};
  if (llama) prefixes = {"LlamaMoE", "Llama"};
  for (const std::string& p : prefixes) {
    if (name == p + "ForCausalLM") return Architecture::kCausalLM;
    if (name == p + "Model") return Architecture::kModel;
    if (llama && name == p + "ForSequenceClassification")
      return Architecture::kSequenceClassification;
    if (llama && name == p + "ForQuestionAnswering") return Architecture::kQuestionAnswering;
  }
  const std::string known =
      llama ? "LlamaMoEForCausalLM, LlamaMoEModel, LlamaMoEForSequenceClassification, "
              "LlamaMoEForQuestionAnswering"
            : prefixes[0] + "ForCausalLM, " + prefixes[0] + "Model";
  r.Bad("architectures", "names class '" + Clipped(name) + "', which is not a model_type '" +
                             std::string(FamilyName(family)) + "' class (known: " + known + ")");
}

// model_type → family. DeepSeek-V2/V3 are named so the error can say what is missing.
Family ParseFamily(const KeyReader& r) {
  const std::string type = r.String("model_type");
  for (const FamilyNames& n : kFamilies)
    if (type == n.model_type) return n.family;
  if (type == "deepseek_v3" || type == "deepseek_v2")
    r.Bad("model_type", "is '" + type +
                            "'; its multi-head latent attention (kv_lora_rank) is not supported; "
                            "the DeepSeek-V3 router runs in dots1 configs");
  r.Bad("model_type", "is '" + Clipped(type) +
                          "', expected one of llama_moe, llama, mixtral, olmoe, qwen2_moe, "
                          "qwen3_moe, granitemoe, dots1");
}

void ReadRopeScaling(const KeyReader& r, const json& j, ModelConfig& c) {
  if (!r.Has("rope_scaling")) return;
  const json& s = j.at("rope_scaling");
  if (!s.is_object()) r.Bad("rope_scaling", "must be null or an object, got " + Shown(s));
  const char* type_key = s.contains("type") ? "type" : "rope_type";
  if (s.contains(type_key) && !s.at(type_key).is_string())
    r.Bad(std::string("rope_scaling.") + type_key,
          "must be a string, got " + Shown(s.at(type_key)));
  const std::string type = s.contains(type_key) ? s.at(type_key).get<std::string>() : "";
  if (type == "linear") {
    c.rope_scaling = RopeScaling::kLinear;
  } else if (type == "dynamic") {
    c.rope_scaling = RopeScaling::kDynamic;
  } else {
    r.Bad("rope_scaling.type", "is '" + Clipped(type) + "', expected 'linear' or 'dynamic'");
  }
  if (!s.contains("factor")) r.Bad("rope_scaling.factor", "must be a number");
  c.rope_scaling_factor = JsonFloat(s.at("factor"), r.where(), "rope_scaling.factor");
  if (!(c.rope_scaling_factor > 1.0f))
    r.Bad("rope_scaling.factor", "must be > 1, got " + Shown(s.at("factor")));
}

void ReadMoeKeys(const KeyReader& r, const json& j, ModelConfig& c) {
  const int layers = c.num_hidden_layers;
  // Upstream defaults for these disagree between versions (docs/llama-moe-spec.md §1.1), so they
  // must be given.
  c.num_experts = r.Int("num_experts", std::nullopt, 1, kMaxExperts);
  c.num_selects = r.Int("num_selects");
  if (c.num_experts < 1) r.Bad("num_experts", "must be >= 1");
  if (c.num_selects < 1 || c.num_selects > c.num_experts)
    r.Bad("num_selects", "is " + std::to_string(c.num_selects) + ", must be in [1, num_experts = " +
                             std::to_string(c.num_experts) + "]");

  const std::string gate_type = r.String("gate_type", std::string("TopKBalancedNoisyGate"));
  if (gate_type != "TopKBalancedNoisyGate")
    r.Bad("gate_type", "is '" + gate_type +
                           "'; only 'TopKBalancedNoisyGate' (the released LLaMA-MoE gate) is "
                           "supported");
  c.gate_type = gate_type;
  const std::string calc = r.String("calculator_type", std::string("UniversalCalculator"));
  if (calc != "UniversalCalculator")
    r.Bad("calculator_type",
          "is '" + calc + "'; only 'UniversalCalculator' (no token dropping) is supported");
  c.calculator_type = calc;
  if (r.Bool("add_weight_norm", false))
    r.Bad("add_weight_norm", "is true; weight-norm experts are not supported");

  const std::string net = Lower(r.String("gate_network"));
  if (net == "mlp") {
    c.gate_network = GateNetwork::kMlp;
  } else if (net == "linear") {
    c.gate_network = GateNetwork::kLinear;
  } else {
    r.Bad("gate_network", "is '" + net + "', expected 'mlp' or 'linear'");
  }
  c.gate_use_softmax = r.Bool("gate_use_softmax");
  c.gate_add_noise = r.Bool("gate_add_noise", false);
  c.multiply_gate_scores = r.Bool("multiply_gate_scores");

  if (!j.contains("score_scale_factor")) r.Bad("score_scale_factor", "is missing");
  const json& sf = j.at("score_scale_factor");
  if (sf.is_null()) {
    // The transformers port's convention for null: E / K.
    c.score_scale_factor.assign(layers, static_cast<float>(c.num_experts) / c.num_selects);
  } else if (sf.is_number()) {
    c.score_scale_factor.assign(layers, JsonFloat(sf, r.where(), "score_scale_factor", 0.0f));
  } else if (sf.is_array()) {
    if (static_cast<int>(sf.size()) != layers)
      r.Bad("score_scale_factor",
            "has " + std::to_string(sf.size()) +
                " entries, expected num_hidden_layers = " + std::to_string(layers));
    for (size_t l = 0; l < sf.size(); ++l) {
      c.score_scale_factor.push_back(
          JsonFloat(sf[l], r.where(), "score_scale_factor[" + std::to_string(l) + "]", 0.0f));
    }
  } else {
    r.Bad("score_scale_factor", "must be a number or a list, got " + Shown(sf));
  }

  if (r.Has("size_experts")) {
    const json& se = j.at("size_experts");
    if (!se.is_array() || static_cast<int>(se.size()) != layers)
      r.Bad("size_experts",
            "must be a list of num_hidden_layers = " + std::to_string(layers) + " lists");
    for (int l = 0; l < layers; ++l) {
      const std::string key = "size_experts[" + std::to_string(l) + "]";
      const json& row = se[l];
      if (!row.is_array() || static_cast<int>(row.size()) != c.num_experts)
        r.Bad(key, "must list num_experts = " + std::to_string(c.num_experts) + " sizes");
      std::vector<int> sizes;
      for (const json& v : row) sizes.push_back(JsonIntAs<int>(v, r.where(), key, 1));
      const long sum = std::accumulate(sizes.begin(), sizes.end(), 0L);
      if (sum != c.intermediate_size)
        r.Bad(key, "sums to " + std::to_string(sum) + ", expected intermediate_size " +
                       std::to_string(c.intermediate_size));
      c.size_experts.push_back(std::move(sizes));
    }
  } else {
    if (c.intermediate_size % c.num_experts != 0)
      r.Bad("size_experts",
            "is null but intermediate_size " + std::to_string(c.intermediate_size) +
                " does not divide into num_experts = " + std::to_string(c.num_experts));
    c.size_experts.assign(layers,
                          std::vector<int>(c.num_experts, c.intermediate_size / c.num_experts));
  }
}

}  // namespace

const char* ArchitectureName(Architecture a) {
  switch (a) {
    case Architecture::kCausalLM:
      return "ForCausalLM";
    case Architecture::kModel:
      return "Model";
    case Architecture::kSequenceClassification:
      return "ForSequenceClassification";
    case Architecture::kQuestionAnswering:
      return "ForQuestionAnswering";
  }
  return "?";
}

const char* FamilyName(Family f) {
  return NamesOf(f).model_type;
}

ModelConfig ModelConfig::FromJson(const json& j, const std::string& where) {
  if (!j.is_object()) Fail(where, "is not a JSON object");
  KeyReader r(j, where);
  ModelConfig c;
  c.family = ParseFamily(r);
  c.model_type = FamilyName(c.family);
  RefuseForeignKeys(r, c.family);
  c.architecture = ParseArchitecture(r, j, c.family);

  c.vocab_size = r.Int("vocab_size");
  c.hidden_size = r.Int("hidden_size");
  c.intermediate_size = r.Int("intermediate_size");
  c.num_hidden_layers = r.Int("num_hidden_layers", std::nullopt, 1, kMaxLayers);
  c.num_attention_heads = r.Int("num_attention_heads");
  c.num_key_value_heads = r.Int("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = r.Int("max_position_embeddings", 2048);
  c.rms_norm_eps = r.Float("rms_norm_eps", 1e-6f);
  // MixtralConfig's default theta is 1e6; every other family's is 1e4.
  c.rope_theta = r.Float("rope_theta", c.family == Family::kMixtral ? 1e6f : 1e4f);
  const bool attention_bias = r.Bool("attention_bias", false);
  c.qkv_bias = c.o_bias = attention_bias;
  c.tie_word_embeddings = r.Bool("tie_word_embeddings", false);
  c.pretraining_tp = r.Int("pretraining_tp", 1);
  c.bos_token_id = r.Int("bos_token_id", 1);
  c.eos_token_id = r.Int("eos_token_id", 2);
  c.has_pad_token = r.Has("pad_token_id");
  c.pad_token_id = r.Int("pad_token_id", 0);
  if (r.Has("id2label") && j.at("id2label").is_object())
    c.num_labels = static_cast<int>(std::min<size_t>(j.at("id2label").size(), kMaxLabels + 1));
  c.num_labels = r.Int("num_labels", c.num_labels, 0, kMaxLabels);
  if (c.num_labels > kMaxLabels)
    r.Bad("id2label", "has more than " + std::to_string(kMaxLabels) + " labels");
  for (int i = 0; i < c.num_labels; ++i) {
    const std::string key = std::to_string(i);
    const bool named =
        r.Has("id2label") && j.at("id2label").contains(key) && j.at("id2label").at(key).is_string();
    c.labels.push_back(named ? j.at("id2label").at(key).get<std::string>() : "LABEL_" + key);
  }

  for (auto [key, value] : {std::pair{"vocab_size", c.vocab_size},
                            {"hidden_size", c.hidden_size},
                            {"intermediate_size", c.intermediate_size},
                            {"num_hidden_layers", c.num_hidden_layers},
                            {"num_attention_heads", c.num_attention_heads},
                            {"num_key_value_heads", c.num_key_value_heads},
                            {"max_position_embeddings", c.max_position_embeddings}}) {
    if (value < 1) r.Bad(key, "must be >= 1, got " + std::to_string(value));
  }
  const bool llama = c.family == Family::kLlamaMoe || c.family == Family::kLlama;
  if (!llama && r.Has("head_dim")) c.explicit_head_dim = r.Int("head_dim", std::nullopt, 2);
  if (c.explicit_head_dim == 0 && c.hidden_size % c.num_attention_heads != 0)
    r.Bad("hidden_size", std::to_string(c.hidden_size) + " is not divisible by " +
                             "num_attention_heads " + std::to_string(c.num_attention_heads));
  if (c.head_dim() % 2 != 0)
    r.Bad(c.explicit_head_dim ? "head_dim" : "hidden_size",
          "gives an odd head_dim; RoPE needs it even");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.Bad("num_key_value_heads", std::to_string(c.num_key_value_heads) +
                                     " does not divide num_attention_heads " +
                                     std::to_string(c.num_attention_heads));
  if (!(c.rms_norm_eps > 0)) r.Bad("rms_norm_eps", "must be > 0");
  if (!(c.rope_theta > 0)) r.Bad("rope_theta", "must be > 0");
  const std::string act = r.String("hidden_act", std::string("silu"));
  if (act != "silu") r.Bad("hidden_act", "is '" + act + "'; only 'silu' is supported");
  ReadRopeScaling(r, j, c);
  c.sliding_window.assign(c.num_hidden_layers, 0);
  c.moe_layer.assign(c.num_hidden_layers, 1);

  if (c.family == Family::kLlamaMoe) {
    ReadMoeKeys(r, j, c);
  } else if (c.family == Family::kLlama) {
    // A dense LLaMA runs as one expert per layer that every token takes with weight 1.
    c.is_moe = false;
    c.moe_layer.assign(c.num_hidden_layers, 0);
    c.num_experts = 1;
    c.num_selects = 1;
    c.gate_use_softmax = true;
    c.multiply_gate_scores = false;
    c.size_experts.assign(c.num_hidden_layers, std::vector<int>{c.intermediate_size});
    c.score_scale_factor.assign(c.num_hidden_layers, 1.0f);
  } else {
    ReadFamilyKeys(r, c);
  }
  return c;
}

ModelConfig ModelConfig::FromFile(const std::filesystem::path& config_json) {
  const json j = ReadJsonFile(config_json);
  try {
    return FromJson(j, config_json.string());
  } catch (const std::bad_alloc&) {
    Fail(config_json.string(), "describes a model too large to hold in memory");
  }
}

int64_t ModelConfig::context_length() const {
  if (rope_scaling == RopeScaling::kNone) return max_position_embeddings;
  return static_cast<int64_t>(max_position_embeddings * rope_scaling_factor);
}

int64_t ModelConfig::max_sequence_length() const {
  if (rope_scaling == RopeScaling::kNone) return max_position_embeddings;
  return std::numeric_limits<int64_t>::max();
}

}  // namespace moe
