#include "core/config.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <new>
#include <numeric>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_value.h"

namespace moe {
namespace {

using nlohmann::json;

// Bounds beyond which a config describes no real model and would only make the engine allocate
// absurdly (docs/config.md): layers, experts per layer, sequence-classification labels. Each is
// far beyond any released model.
constexpr int kMaxLayers = 1 << 12;
constexpr int kMaxExperts = 1 << 16;
constexpr int kMaxLabels = 1 << 20;

// Reads config keys with one rule: a key that is present must have the right type; a missing
// key takes the default only where every upstream version agrees on it.
class KeyReader {
 public:
  KeyReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool Has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  [[noreturn]] void Bad(const std::string& key, const std::string& what) const {
    Fail(where_, key + " " + what);
  }

  // Range-checked before narrowing: 4294967304 is an error, not 8.
  int Int(const char* key, std::optional<int> fallback = std::nullopt,
          int lo = std::numeric_limits<int>::min(),
          int hi = std::numeric_limits<int>::max()) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    return JsonIntAs<int>(j_.at(key), where_, key, lo, hi);
  }
  float Float(const char* key, std::optional<float> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    return JsonFloat(j_.at(key), where_, key);
  }
  bool Bool(const char* key, std::optional<bool> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    const json& v = j_.at(key);
    if (!v.is_boolean()) Bad(key, "must be true or false, got " + Shown(v));
    return v.get<bool>();
  }
  std::string String(const char* key, std::optional<std::string> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    const json& v = j_.at(key);
    if (!v.is_string()) Bad(key, "must be a string, got " + Shown(v));
    return v.get<std::string>();
  }
  const json& At(const char* key) const { return j_.at(key); }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Architecture ParseArchitecture(const KeyReader& r, const json& j) {
  if (!r.Has("architectures")) return Architecture::kCausalLM;
  const json& a = j.at("architectures");
  if (!a.is_array() || a.empty() || !a[0].is_string())
    r.Bad("architectures", "must be a list of class names, got " + Shown(a));
  const std::string name = a[0].get<std::string>();
  for (const char* prefix : {"LlamaMoE", "Llama"}) {
    const std::string p = prefix;
    if (name == p + "ForCausalLM") return Architecture::kCausalLM;
    if (name == p + "Model") return Architecture::kModel;
    if (name == p + "ForSequenceClassification") return Architecture::kSequenceClassification;
    if (name == p + "ForQuestionAnswering") return Architecture::kQuestionAnswering;
  }
  r.Bad("architectures", "names unknown class '" + Clipped(name) +
                             "' (known: LlamaMoEForCausalLM, LlamaMoEModel, "
                             "LlamaMoEForSequenceClassification, LlamaMoEForQuestionAnswering)");
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

ModelConfig ModelConfig::FromJson(const json& j, const std::string& where) {
  if (!j.is_object()) Fail(where, "is not a JSON object");
  KeyReader r(j, where);
  ModelConfig c;
  c.model_type = r.String("model_type");
  if (c.model_type != "llama_moe" && c.model_type != "llama")
    r.Bad("model_type", "is '" + c.model_type + "', expected 'llama_moe' or 'llama'");
  c.is_moe = c.model_type == "llama_moe";
  c.architecture = ParseArchitecture(r, j);

  c.vocab_size = r.Int("vocab_size");
  c.hidden_size = r.Int("hidden_size");
  c.intermediate_size = r.Int("intermediate_size");
  c.num_hidden_layers = r.Int("num_hidden_layers", std::nullopt, 1, kMaxLayers);
  c.num_attention_heads = r.Int("num_attention_heads");
  c.num_key_value_heads = r.Int("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = r.Int("max_position_embeddings", 2048);
  c.rms_norm_eps = r.Float("rms_norm_eps", 1e-6f);
  c.rope_theta = r.Float("rope_theta", 10000.0f);
  c.attention_bias = r.Bool("attention_bias", false);
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
  if (c.hidden_size % c.num_attention_heads != 0)
    r.Bad("hidden_size", std::to_string(c.hidden_size) + " is not divisible by " +
                             "num_attention_heads " + std::to_string(c.num_attention_heads));
  if (c.head_dim() % 2 != 0) r.Bad("hidden_size", "gives an odd head_dim; RoPE needs it even");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.Bad("num_key_value_heads", std::to_string(c.num_key_value_heads) +
                                     " does not divide num_attention_heads " +
                                     std::to_string(c.num_attention_heads));
  if (!(c.rms_norm_eps > 0)) r.Bad("rms_norm_eps", "must be > 0");
  if (!(c.rope_theta > 0)) r.Bad("rope_theta", "must be > 0");
  const std::string act = r.String("hidden_act", std::string("silu"));
  if (act != "silu") r.Bad("hidden_act", "is '" + act + "'; only 'silu' is supported");
  ReadRopeScaling(r, j, c);

  if (c.is_moe) {
    ReadMoeKeys(r, j, c);
  } else {
    // A dense LLaMA runs as one expert per layer that every token takes with weight 1.
    c.num_experts = 1;
    c.num_selects = 1;
    c.gate_use_softmax = true;
    c.multiply_gate_scores = false;
    c.size_experts.assign(c.num_hidden_layers, std::vector<int>{c.intermediate_size});
    c.score_scale_factor.assign(c.num_hidden_layers, 1.0f);
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

int64_t ModelConfig::TotalParameters() const {
  const int64_t h = hidden_size, v = vocab_size, d = head_dim();
  const int64_t attn =
      h * d * (num_attention_heads * 2 + num_key_value_heads * 2) +
      (attention_bias ? d * (2 * num_attention_heads + 2 * num_key_value_heads) : 0);
  const int64_t gate = !is_moe ? 0
                       : gate_network == GateNetwork::kMlp
                           ? int64_t{num_experts} * h + int64_t{num_experts} * num_experts
                           : int64_t{num_experts} * h;
  const int64_t noise = is_moe && gate_add_noise ? int64_t{num_experts} * h : 0;
  int64_t total = v * h + h;  // embeddings, final norm
  if (!tie_word_embeddings) total += v * h;
  for (int l = 0; l < num_hidden_layers; ++l) {
    const int64_t ffn = 3 * h * std::accumulate(size_experts[l].begin(), size_experts[l].end(), 0L);
    total += attn + 2 * h + gate + noise + ffn;
  }
  return total;
}

int64_t ModelConfig::ActivatedParameters() const {
  const int64_t h = hidden_size, v = vocab_size, d = head_dim();
  const int64_t attn = h * d * (num_attention_heads * 2 + num_key_value_heads * 2);
  const int64_t gate = !is_moe ? 0
                       : gate_network == GateNetwork::kMlp
                           ? int64_t{num_experts} * h + int64_t{num_experts} * num_experts
                           : int64_t{num_experts} * h;
  int64_t total = 2 * v * h + h;  // the lm_head is touched even when tied
  for (int l = 0; l < num_hidden_layers; ++l) {
    // Experts of one layer may differ in width; count the average expert K times.
    const int64_t width = std::accumulate(size_experts[l].begin(), size_experts[l].end(), 0L);
    total += attn + 2 * h + gate + 3 * h * width * num_selects / num_experts;
  }
  return total;
}

}  // namespace moe
