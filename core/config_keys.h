#pragma once
// How config.json keys are read, shared by the parser of every family (config.cpp,
// config_families.cpp): a key that is present must have the right type; a missing key takes a
// default only where every upstream version agrees on it (docs/config.md).
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {

// Bounds beyond which a config describes no real model and would only make the engine allocate
// absurdly (docs/config.md): layers, experts per layer, sequence-classification labels. Each is
// far beyond any released model.
constexpr int kMaxLayers = 1 << 12;
constexpr int kMaxExperts = 1 << 16;
constexpr int kMaxLabels = 1 << 20;

class KeyReader {
 public:
  KeyReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

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
  float Float(const char* key, std::optional<float> fallback = std::nullopt,
              float lo = std::numeric_limits<float>::lowest(),
              float hi = std::numeric_limits<float>::max()) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    return JsonFloat(j_.at(key), where_, key, lo, hi);
  }
  bool Bool(const char* key, std::optional<bool> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    const nlohmann::json& v = j_.at(key);
    if (!v.is_boolean()) Bad(key, "must be true or false, got " + Shown(v));
    return v.get<bool>();
  }
  std::string String(const char* key, std::optional<std::string> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      Bad(key, "is missing");
    }
    const nlohmann::json& v = j_.at(key);
    if (!v.is_string()) Bad(key, "must be a string, got " + Shown(v));
    return v.get<std::string>();
  }
  // A list of integers in [lo, hi] (an absent or null key is an empty list).
  std::vector<int> IntList(const char* key, int lo, int hi) const {
    std::vector<int> out;
    if (!Has(key)) return out;
    const nlohmann::json& v = j_.at(key);
    if (!v.is_array()) Bad(key, "must be a list of integers, got " + Shown(v));
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(
          JsonIntAs<int>(v[i], where_, std::string(key) + "[" + std::to_string(i) + "]", lo, hi));
    return out;
  }
  const nlohmann::json& At(const char* key) const { return j_.at(key); }
  const std::string& where() const { return where_; }

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// The keys of the families other than LLaMA-MoE and LLaMA (config_families.cpp): attention
// variant, layer kinds, router recipe, shared experts and multipliers.
void ReadFamilyKeys(const KeyReader& r, ModelConfig& c);

// A config naming the keys of another family's router or block (n_group in a Mixtral config,
// clip_qkv in a Qwen one) is refused rather than half-read.
void RefuseForeignKeys(const KeyReader& r, Family family);

}  // namespace moe
