#include "analysis/policy/policy_json.h"

#include <algorithm>
#include <vector>

#include "analysis/policy/policy_flags.h"
#include "core/error.h"

namespace moe {
namespace {

using nlohmann::json;

// A layer key of the JSON form: "3" or 3 -> 3, "*" -> -1 (every layer).
int LayerKey(const json& key, int num_layers, const std::string& where) {
  if (key.is_number_integer())
    return ParseLayer(std::to_string(key.get<int64_t>()), num_layers, where);
  if (!key.is_string()) Fail(where, "layer " + key.dump() + " is not a number or '*'");
  return ParseLayer(key.get<std::string>(), num_layers, where);
}

}  // namespace

DisableMode ParseDisableMode(const std::string& s, const std::string& where) {
  if (s == "reroute") return DisableMode::kReroute;
  if (s == "drop") return DisableMode::kDrop;
  if (s == "drop-renorm" || s == "drop_renorm") return DisableMode::kDropRenormalize;
  Fail(where, "mode is '" + s + "', expected reroute, drop or drop-renorm");
}

json PolicyToJson(const RoutingPolicy& p) {
  json j;
  j["mode"] = DisableModeName(p.mode);
  json disable = json::array(), top_k = json::object(), top_r = json::object(),
       scale = json::object(), force = json::array();
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const LayerPolicy& lp = p.layers[l];
    const std::string key = std::to_string(l);
    for (int32_t e : lp.disabled) disable.push_back({static_cast<int>(l), e});
    if (lp.top_k) top_k[key] = lp.top_k;
    if (lp.top_r_disable) top_r[key] = lp.top_r_disable;
    if (lp.scale_factor) scale[key] = *lp.scale_factor;
  }
  for (const ForcedRoute& f : p.forced) {
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

RoutingPolicy PolicyFromJson(const json& j, const LlamaMoeConfig& c, const std::string& where) {
  const int L = c.num_hidden_layers;
  if (!j.is_object()) Fail(where, "a routing policy must be a JSON object");
  static const std::vector<std::string> known = {"mode",  "disable",      "top_k",
                                                 "top_r", "scale_factor", "force"};
  for (const auto& item : j.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      Fail(where, "unknown key '" + item.key() + "' (known: mode, disable, top_k, top_r, " +
                      "scale_factor, force)");
  RoutingPolicy p;
  try {
    if (j.contains("mode")) p.mode = ParseDisableMode(j.at("mode").get<std::string>(), where);
    if (j.contains("disable")) {
      for (const json& pair : j.at("disable")) {
        if (!pair.is_array() || pair.size() != 2)
          Fail(where, "disable entries must be [layer, expert] pairs, got " + pair.dump());
        const int layer = LayerKey(pair[0], L, where + " disable");
        for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? L : layer + 1); ++l)
          p.Disable({l, pair[1].get<int32_t>()}, L);
      }
    }
    auto per_layer = [&](const char* key, auto&& apply) {
      if (!j.contains(key)) return;
      for (const auto& item : j.at(key).items())
        apply(LayerKey(json(item.key()), L, where + " " + key), item.value());
    };
    per_layer("top_k", [&](int l, const json& v) { p.SetTopK(l, v.get<int>(), L); });
    per_layer("top_r", [&](int l, const json& v) { p.SetTopR(l, v.get<int>(), L); });
    per_layer("scale_factor",
              [&](int l, const json& v) { p.SetScaleFactor(l, v.get<float>(), L); });
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
  return p;
}

}  // namespace moe
