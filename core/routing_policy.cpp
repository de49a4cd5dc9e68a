#include "core/routing_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/config.h"
#include "core/error.h"

namespace moe {

DisableMode ParseDisableMode(const std::string& s, const std::string& where) {
  if (s == "reroute") return DisableMode::kReroute;
  if (s == "drop") return DisableMode::kDrop;
  if (s == "drop-renorm" || s == "drop_renorm") return DisableMode::kDropRenormalize;
  Fail(where, "mode is '" + s + "', expected reroute, drop or drop-renorm");
}

namespace {

using nlohmann::json;

// "3" -> {3}; "*" -> every layer.
std::vector<int> ParseLayers(const std::string& key, int num_layers, const std::string& where) {
  if (key == "*") {
    std::vector<int> all(num_layers);
    for (int l = 0; l < num_layers; ++l) all[l] = l;
    return all;
  }
  size_t used = 0;
  int layer = -1;
  try {
    layer = std::stoi(key, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != key.size()) Fail(where, "layer '" + key + "' is not a number or '*'");
  if (layer < 0 || layer >= num_layers)
    Fail(where, "layer " + key + " is out of range (the model has layers 0.." +
                    std::to_string(num_layers - 1) + ")");
  return {layer};
}

// "12:1,3:2" -> [("12", 1), ("3", 2)]
std::vector<std::pair<std::string, double>> ParsePairs(const std::string& text,
                                                       const std::string& flag) {
  std::vector<std::pair<std::string, double>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos)
      Fail(flag, "entry '" + item + "' must look like LAYER:VALUE (e.g. 3:5)");
    const std::string value = item.substr(colon + 1);
    try {
      size_t used = 0;
      const double v = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
      out.emplace_back(item.substr(0, colon), v);
    } catch (const std::exception&) {
      Fail(flag, "entry '" + item + "' has a value that is not a number");
    }
  }
  return out;
}

int AsInt(double v, const std::string& where) {
  if (v != static_cast<int>(v)) Fail(where, "must be an integer");
  return static_cast<int>(v);
}

}  // namespace

const char* DisableModeName(DisableMode mode) {
  switch (mode) {
    case DisableMode::kReroute:
      return "reroute";
    case DisableMode::kDrop:
      return "drop";
    case DisableMode::kDropRenormalize:
      return "drop-renorm";
  }
  return "?";
}

bool RoutingPolicy::empty() const {
  return forced.empty() && std::all_of(layers.begin(), layers.end(), [](const LayerPolicy& p) {
           return p.disabled.empty() && p.top_k == 0 && p.top_r_disable == 0 && !p.scale_factor;
         });
}

const LayerPolicy* RoutingPolicy::Layer(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers.size())) return nullptr;
  return &layers[layer];
}

void RoutingPolicy::Validate(const LlamaMoeConfig& c) const {
  const int E = c.num_experts, L = c.num_hidden_layers;
  if (!empty() && !c.is_moe) Fail("policy", "this model has no router to intervene on");
  if (!layers.empty() && static_cast<int>(layers.size()) != L)
    Fail("policy", "has " + std::to_string(layers.size()) + " layer entries, the model has " +
                       std::to_string(L));
  for (int l = 0; l < static_cast<int>(layers.size()); ++l) {
    const LayerPolicy& p = layers[l];
    const std::string where = "policy layer " + std::to_string(l);
    std::vector<int32_t> d = p.disabled;
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    for (int32_t e : d)
      if (e < 0 || e >= E)
        Fail(where,
             "expert " + std::to_string(e) + " is out of range (0.." + std::to_string(E - 1) + ")");
    if (static_cast<int>(d.size()) == E)
      Fail(where, "disables all " + std::to_string(E) + " experts; at least one must remain");
    if (p.top_k < 0 || p.top_k > E)
      Fail(where,
           "top_k " + std::to_string(p.top_k) + " is out of range (1.." + std::to_string(E) + ")");
    if (p.top_r_disable < 0 || p.top_r_disable >= E)
      Fail(where, "top_r " + std::to_string(p.top_r_disable) + " is out of range (0.." +
                      std::to_string(E - 1) + ")");
    const int available = (mode == DisableMode::kReroute ? E - static_cast<int>(d.size()) : E);
    if (p.top_r_disable >= available)
      Fail(where, "top_r " + std::to_string(p.top_r_disable) + " leaves no expert to route to");
    if (p.scale_factor && !(*p.scale_factor >= 0)) Fail(where, "scale_factor must be >= 0");
  }
  for (size_t i = 0; i < forced.size(); ++i) {
    const ForcedRoute& f = forced[i];
    const std::string where = "policy force[" + std::to_string(i) + "]";
    if (f.layer < -1 || f.layer >= L)
      Fail(where, "layer " + std::to_string(f.layer) + " is out of range");
    if (f.experts.empty()) Fail(where, "names no experts");
    for (size_t j = 0; j < f.experts.size(); ++j) {
      const int32_t e = f.experts[j];
      if (e < 0 || e >= E)
        Fail(where,
             "expert " + std::to_string(e) + " is out of range (0.." + std::to_string(E - 1) + ")");
      if (std::find(f.experts.begin(), f.experts.begin() + j, e) != f.experts.begin() + j)
        Fail(where, "names expert " + std::to_string(e) + " twice");
    }
    if (f.token_id < -1 || f.token_id >= c.vocab_size)
      Fail(where, "token_id " + std::to_string(f.token_id) + " is outside the vocabulary");
  }
}

int RoutingPolicy::MaxSelections(const LlamaMoeConfig& c) const {
  int k = c.num_selects;
  for (const LayerPolicy& p : layers) k = std::max(k, p.top_k);
  for (const ForcedRoute& f : forced) k = std::max(k, static_cast<int>(f.experts.size()));
  return k;
}

json RoutingPolicy::ToJson() const {
  json j;
  j["mode"] = DisableModeName(mode);
  json disable = json::array(), top_k = json::object(), top_r = json::object(),
       scale = json::object(), force = json::array();
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::string key = std::to_string(l);
    for (int32_t e : layers[l].disabled) disable.push_back({static_cast<int>(l), e});
    if (layers[l].top_k) top_k[key] = layers[l].top_k;
    if (layers[l].top_r_disable) top_r[key] = layers[l].top_r_disable;
    if (layers[l].scale_factor) scale[key] = *layers[l].scale_factor;
  }
  for (const ForcedRoute& f : forced) {
    json e = {{"experts", f.experts}};
    e["layer"] = f.layer < 0 ? json("*") : json(f.layer);
    if (f.token_id >= 0) e["token_id"] = f.token_id;
    if (f.position >= 0) e["position"] = f.position;
    force.push_back(e);
  }
  j["disable"] = disable;
  j["top_k"] = top_k;
  j["top_r"] = top_r;
  j["scale_factor"] = scale;
  j["force"] = force;
  return j;
}

RoutingPolicy RoutingPolicy::FromJson(const json& j, const LlamaMoeConfig& c,
                                      const std::string& where) {
  const int L = c.num_hidden_layers;
  if (!j.is_object()) Fail(where, "a routing policy must be a JSON object");
  static const std::vector<std::string> known = {"mode",  "disable",      "top_k",
                                                 "top_r", "scale_factor", "force"};
  for (const auto& item : j.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      Fail(where, "unknown key '" + item.key() + "' (known: mode, disable, top_k, top_r, " +
                      "scale_factor, force)");
  RoutingPolicy p;
  p.layers.resize(L);
  try {
    if (j.contains("mode")) p.mode = ParseDisableMode(j.at("mode").get<std::string>(), where);
    if (j.contains("disable")) {
      for (const json& pair : j.at("disable")) {
        if (!pair.is_array() || pair.size() != 2)
          Fail(where, "disable entries must be [layer, expert] pairs, got " + pair.dump());
        const std::string layer =
            pair[0].is_string() ? pair[0].get<std::string>() : std::to_string(pair[0].get<int>());
        for (int l : ParseLayers(layer, L, where + " disable"))
          p.layers[l].disabled.push_back(pair[1].get<int32_t>());
      }
    }
    auto per_layer = [&](const char* key, auto&& apply) {
      if (!j.contains(key)) return;
      for (const auto& item : j.at(key).items())
        for (int l : ParseLayers(item.key(), L, where + " " + key))
          apply(p.layers[l], item.value());
    };
    per_layer("top_k", [](LayerPolicy& lp, const json& v) { lp.top_k = v.get<int>(); });
    per_layer("top_r", [](LayerPolicy& lp, const json& v) { lp.top_r_disable = v.get<int>(); });
    per_layer("scale_factor",
              [](LayerPolicy& lp, const json& v) { lp.scale_factor = v.get<float>(); });
    if (j.contains("force")) {
      for (const json& f : j.at("force")) {
        ForcedRoute r;
        const json layer = f.value("layer", json("*"));
        r.layer = layer.is_string() && layer.get<std::string>() == "*" ? -1 : layer.get<int>();
        r.token_id = f.value("token_id", -1);
        r.position = f.value("position", -1);
        r.experts = f.at("experts").get<std::vector<int32_t>>();
        p.forced.push_back(std::move(r));
      }
    }
  } catch (const json::exception& e) {
    Fail(where, std::string("malformed routing policy: ") + e.what());
  }
  p.Validate(c);
  return p;
}

RoutingPolicy RoutingPolicy::FromFlags(const std::string& disable, const std::string& mode,
                                       const std::string& top_k, const std::string& top_r,
                                       const LlamaMoeConfig& c) {
  const int L = c.num_hidden_layers;
  RoutingPolicy p;
  p.layers.resize(L);
  if (!mode.empty()) p.mode = ParseDisableMode(mode, "--mode");
  for (const auto& [layer, expert] : ParsePairs(disable, "--disable"))
    for (int l : ParseLayers(layer, L, "--disable"))
      p.layers[l].disabled.push_back(AsInt(expert, "--disable " + layer));
  for (const auto& [layer, k] : ParsePairs(top_k, "--top-k"))
    for (int l : ParseLayers(layer, L, "--top-k")) p.layers[l].top_k = AsInt(k, "--top-k");
  for (const auto& [layer, r] : ParsePairs(top_r, "--top-r"))
    for (int l : ParseLayers(layer, L, "--top-r")) p.layers[l].top_r_disable = AsInt(r, "--top-r");
  p.Validate(c);
  return p;
}

}  // namespace moe
