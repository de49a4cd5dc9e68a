#include "analysis/cache/cache_sim_file.h"

#include <algorithm>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/json_value.h"

namespace moe {

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// The standard row fields (ExportCacheSim); others are CacheSimTable::extra_fields.
const std::set<std::string>& StandardFields() {
  static const std::set<std::string> s = {
      "layer",   "domain",           "policy",          "capacity", "hit_rate", "ci_low",
      "ci_high", "misses_per_token", "bytes_per_token", "requests", "tokens",   "docs"};
  return s;
}

const nlohmann::json& Field(const nlohmann::json& object, const std::string& name,
                            const std::string& where, const std::string& field) {
  if (!object.is_object() || !object.contains(name)) Fail(where, field + " is missing");
  return object[name];
}

// A number, or null (written for NaN).
double NumberOrNull(const nlohmann::json& v, const std::string& where, const std::string& field) {
  if (v.is_null()) return kNan;
  if (!v.is_number()) Fail(where, field + " must be a number or null, got " + Shown(v));
  return v.get<double>();
}

std::string Text(const nlohmann::json& v, const std::string& where, const std::string& field) {
  if (!v.is_string()) Fail(where, field + " must be a string, got " + Shown(v));
  return v.get<std::string>();
}

int IndexOf(std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<int>(it - names.begin());
  names.push_back(name);
  return static_cast<int>(names.size()) - 1;
}

}  // namespace

CacheSimTable ReadCacheSimTable(const std::filesystem::path& path) {
  const std::string p = path.string();
  const nlohmann::json j = ReadJsonFile(path);
  if (!j.is_object() || !j.contains("format") || j["format"] != "moescope-cache-sim")
    Fail(p, "format is not 'moescope-cache-sim' (not a cache.json of moescope cache-sim)");
  const int64_t version = JsonInt(Field(j, "format_version", p, "format_version"), p,
                                  "format_version", 0, std::numeric_limits<int>::max());
  // Version 2 added the prefetch policies' row fields, which read as extra fields.
  if (version != 1 && version != 2)
    Fail(p, "format_version " + std::to_string(version) +
                " is not 1 or 2, the ones this moescope reads");
  CacheSimTable t;
  if (j.contains("trace")) t.trace = Text(j["trace"], p, "trace");
  t.layers = JsonIntAs<int>(Field(j, "num_layers", p, "num_layers"), p, "num_layers", 1);
  t.experts = JsonIntAs<int>(Field(j, "num_experts", p, "num_experts"), p, "num_experts", 1);
  t.top_k = JsonIntAs<int>(Field(j, "top_k", p, "top_k"), p, "top_k", 1, t.experts);
  if (j.contains("cold_start")) {
    if (!j["cold_start"].is_boolean()) Fail(p, "cold_start must be true or false");
    t.cold_start = j["cold_start"].get<bool>();
  }
  if (j.contains("ci_level")) t.ci_level = NumberOrNull(j["ci_level"], p, "ci_level");
  if (j.contains("min_documents"))
    t.min_documents = JsonIntAs<int>(j["min_documents"], p, "min_documents", 0);
  const nlohmann::json& bytes = Field(j, "expert_bytes", p, "expert_bytes");
  if (!bytes.is_array() || static_cast<int>(bytes.size()) != t.layers)
    Fail(p,
         "expert_bytes must be an array of num_layers (" + std::to_string(t.layers) + ") numbers");
  for (size_t l = 0; l < bytes.size(); ++l)
    t.expert_bytes.push_back(NumberOrNull(bytes[l], p, "expert_bytes[" + std::to_string(l) + "]"));

  const nlohmann::json& rows = Field(j, "rows", p, "rows");
  if (!rows.is_array()) Fail(p, "rows must be an array");
  std::vector<std::string> domain_names;  // "all" included, mapped to M afterwards
  std::vector<int> domain_of_row;
  std::set<int> capacities;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string at = "rows[" + std::to_string(i) + "].";
    const nlohmann::json& x = rows[i];
    if (!x.is_object()) Fail(p, "rows[" + std::to_string(i) + "] must be an object");
    auto field = [&](const char* name) -> const nlohmann::json& {
      return Field(x, name, p, at + name);
    };
    auto number = [&](const char* name) { return NumberOrNull(field(name), p, at + name); };
    auto count = [&](const char* name) {
      return JsonInt(field(name), p, at + name, 0, std::numeric_limits<int64_t>::max());
    };
    CacheSimTableRow r;
    r.layer = JsonIntAs<int>(field("layer"), p, at + "layer", 0, t.layers - 1);
    domain_of_row.push_back(IndexOf(domain_names, Text(field("domain"), p, at + "domain")));
    r.policy = IndexOf(t.policies, Text(field("policy"), p, at + "policy"));
    r.capacity = JsonIntAs<int>(field("capacity"), p, at + "capacity", 1, t.experts);
    capacities.insert(r.capacity);
    r.hit_rate = number("hit_rate");
    r.ci_low = number("ci_low");
    r.ci_high = number("ci_high");
    r.misses_per_token = number("misses_per_token");
    r.bytes_per_token = number("bytes_per_token");
    r.requests = count("requests");
    r.tokens = count("tokens");
    r.docs = count("docs");
    for (const auto& [key, value] : x.items()) {
      if (StandardFields().count(key) != 0 || !(value.is_number() || value.is_null())) continue;
      const size_t e = static_cast<size_t>(IndexOf(t.extra_fields, key));
      r.extra.resize(t.extra_fields.size(), kNan);
      r.extra[e] = NumberOrNull(value, p, at + key);
    }
    t.rows.push_back(std::move(r));
  }
  for (CacheSimTableRow& r : t.rows) r.extra.resize(t.extra_fields.size(), kNan);
  // Domains in the order named, "all" last (row M).
  for (const std::string& d : domain_names)
    if (d != "all") t.domains.push_back(d);
  const int M = static_cast<int>(t.domains.size());
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const std::string& name = domain_names[static_cast<size_t>(domain_of_row[i])];
    t.rows[i].domain = name == "all"
                           ? M
                           : static_cast<int>(std::find(t.domains.begin(), t.domains.end(), name) -
                                              t.domains.begin());
  }
  t.capacities.assign(capacities.begin(), capacities.end());
  return t;
}

}  // namespace moe
