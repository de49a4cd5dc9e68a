#include "analysis/policy/policy_json.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "analysis/policy/policy_flags.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {
namespace {

using nlohmann::json;

// A layer key of the JSON form: "3" or 3 -> 3, "*" -> -1 (every layer).
int LayerKey(const json& key, int num_layers, const std::string& where) {
  if (key.is_number())  // range-checked as an int first, then named like a flag's layer
    return ParseLayer(std::to_string(JsonIntAs<int>(key, where, "layer", 0)), num_layers, where);
  if (!key.is_string()) Fail(where, "layer " + Shown(key) + " is not a number or '*'");
  return ParseLayer(Clipped(key.get<std::string>()), num_layers, where);
}

const json& ObjectAt(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!v.is_object())
    Fail(where, std::string(key) + " must be an object {layer: value}, got " + Shown(v));
  return v;
}

const json& ArrayAt(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!v.is_array()) Fail(where, std::string(key) + " must be a list, got " + Shown(v));
  return v;
}

void CheckKeys(const json& j, const std::vector<std::string>& known, const std::string& where,
               const std::string& what) {
  for (const auto& item : j.items()) {
    if (std::find(known.begin(), known.end(), item.key()) != known.end()) continue;
    std::string names;
    for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
    Fail(where, what + "unknown key '" + Clipped(item.key()) + "' (known: " + names + ")");
  }
}

// One "force" entry: {"layer": l | "*", "token_id": id, "position": p, "experts": [...]}.
// token_id and position are optional (absent = any token, any position) and never negative.
ForcedRoute ForcedRouteFromJson(const json& f, const ModelConfig& c, const std::string& where,
                                const std::string& field) {
  if (!f.is_object()) Fail(where, field + " must be an object, got " + Shown(f));
  CheckKeys(f, {"layer", "token_id", "position", "experts"}, where, field + " has ");
  ForcedRoute r;
  if (f.contains("layer") && !(f.at("layer").is_string() && f.at("layer") == "*"))
    r.layer = static_cast<int>(
        JsonInt(f.at("layer"), where, field + ".layer", 0, int64_t{c.num_hidden_layers} - 1));
  if (f.contains("token_id"))
    r.token_id = JsonIntAs<int32_t>(f.at("token_id"), where, field + ".token_id", 0);
  if (f.contains("position"))
    r.position = JsonIntAs<int32_t>(f.at("position"), where, field + ".position", 0);
  if (!f.contains("experts")) Fail(where, field + ".experts is missing");
  const json& experts = ArrayAt(f, "experts", where + " " + field);
  for (size_t i = 0; i < experts.size(); ++i)
    r.experts.push_back(
        JsonIntAs<int32_t>(experts[i], where, field + ".experts[" + std::to_string(i) + "]", 0));
  return r;
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
       random_r = json::object(), random_r_seed = json::object(), scale = json::object(),
       force = json::array(), shared_off = json::array(), threshold = json::object(),
       k_min = json::object(), skip_beta = json::object(), top_p = json::object();
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const LayerPolicy& lp = p.layers[l];
    const std::string key = std::to_string(l);
    for (int32_t e : lp.disabled) disable.push_back({static_cast<int>(l), e});
    if (lp.top_k) top_k[key] = lp.top_k;
    if (lp.top_r_disable) top_r[key] = lp.top_r_disable;
    if (lp.random_r_disable) random_r[key] = lp.random_r_disable;
    if (lp.random_r_disable) random_r_seed[key] = lp.random_r_seed;
    if (lp.scale_factor) scale[key] = *lp.scale_factor;
    if (lp.shared_expert_disabled) shared_off.push_back(static_cast<int>(l));
    if (lp.threshold > 0) threshold[key] = lp.threshold;
    if (lp.threshold > 0 && lp.threshold_k_min != 1) k_min[key] = lp.threshold_k_min;
    if (lp.skip_beta > 0) skip_beta[key] = lp.skip_beta;
    if (lp.top_p > 0) top_p[key] = lp.top_p;
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
  // Written only when used, so policies without random-r keep their JSON text (trace and
  // ablation files compare it on resume).
  if (!random_r.empty()) {
    j["random_r"] = random_r;
    j["random_r_seed"] = random_r_seed;
  }
  j["scale_factor"] = scale;
  j["force"] = force;
  if (!shared_off.empty()) j["disable_shared_expert"] = shared_off;  // only when used, as random_r
  if (!threshold.empty()) j["threshold"] = threshold;  // the dynamic-k rules, only when used
  if (!k_min.empty()) j["threshold_k_min"] = k_min;
  if (!skip_beta.empty()) j["skip_beta"] = skip_beta;
  if (!top_p.empty()) j["top_p"] = top_p;
  // A route table is described, not written out: it comes from `moescope replay`'s files.
  if (p.routes)
    j["route_table"] = {{"documents", p.routes->doc_offset.size() - 1},
                        {"rows", p.routes->rows()},
                        {"k", p.routes->k}};
  return j;
}

RoutingPolicy PolicyFromJson(const json& j, const ModelConfig& c, const std::string& where) {
  const int L = c.num_hidden_layers;
  if (!j.is_object()) Fail(where, "a routing policy must be a JSON object");
  CheckKeys(j,
            {"mode", "disable", "top_k", "top_r", "random_r", "random_r_seed", "scale_factor",
             "force", "disable_shared_expert", "threshold", "threshold_k_min", "skip_beta", "top_p",
             "route_table"},
            where, "");
  if (j.contains("route_table"))
    Fail(where, "route_table is not read from a policy file; import routes with moescope replay");
  RoutingPolicy p;
  if (j.contains("mode")) {
    if (!j.at("mode").is_string()) Fail(where, "mode must be a string, got " + Shown(j.at("mode")));
    p.mode = ParseDisableMode(Clipped(j.at("mode").get<std::string>()), where);
  }
  if (j.contains("disable")) {
    const json& disable = ArrayAt(j, "disable", where);
    for (size_t i = 0; i < disable.size(); ++i) {
      const json& pair = disable[i];
      const std::string field = "disable[" + std::to_string(i) + "]";
      if (!pair.is_array() || pair.size() != 2)
        Fail(where, field + " must be a [layer, expert] pair, got " + Shown(pair));
      const int layer = LayerKey(pair[0], L, where + " " + field);
      const int32_t expert = JsonIntAs<int32_t>(pair[1], where, field + "[1]", 0);
      for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? L : layer + 1); ++l)
        p.Disable({l, expert}, L);
    }
  }
  // Each value of a {layer: value} object, with the layer key parsed.
  auto per_layer = [&](const char* key, auto&& apply) {
    if (!j.contains(key)) return;
    for (const auto& item : ObjectAt(j, key, where).items()) {
      const std::string field = std::string(key) + "[" + Clipped(item.key()) + "]";
      apply(LayerKey(json(item.key()), L, where + " " + key), item.value(), field);
    }
  };
  // k = 0 would mean "the config's num_selects" inside RoutingPolicy, so a written 0 is refused
  // here rather than silently ignored.
  per_layer("top_k", [&](int l, const json& v, const std::string& field) {
    p.SetTopK(l, JsonIntAs<int>(v, where, field, 1, c.num_experts), L);
  });
  per_layer("top_r", [&](int l, const json& v, const std::string& field) {
    p.SetTopR(l, JsonIntAs<int>(v, where, field, 0), L);
  });
  // random_r_seed is read first and applied with random_r (a seed of a layer without random_r
  // changes nothing and is dropped).
  std::vector<uint64_t> seeds(static_cast<size_t>(L), 0);
  per_layer("random_r_seed", [&](int l, const json& v, const std::string& field) {
    const uint64_t seed =
        static_cast<uint64_t>(JsonInt(v, where, field, 0, std::numeric_limits<int64_t>::max()));
    for (int m = l < 0 ? 0 : l; m < (l < 0 ? L : l + 1); ++m) seeds[static_cast<size_t>(m)] = seed;
  });
  per_layer("random_r", [&](int l, const json& v, const std::string& field) {
    const int r = JsonIntAs<int>(v, where, field, 0);
    for (int m = l < 0 ? 0 : l; m < (l < 0 ? L : l + 1); ++m)
      p.SetRandomR(m, r, seeds[static_cast<size_t>(m)], L);
  });
  // The dynamic-k rules (core/dynamic_k.h), each a {layer: value} object; threshold_k_min is
  // read first and applied with threshold, as random_r_seed with random_r.
  std::vector<int> k_min(static_cast<size_t>(L), 1);
  per_layer("threshold_k_min", [&](int l, const json& v, const std::string& field) {
    const int k = JsonIntAs<int>(v, where, field, 1, c.num_experts);
    for (int m = l < 0 ? 0 : l; m < (l < 0 ? L : l + 1); ++m) k_min[static_cast<size_t>(m)] = k;
  });
  per_layer("threshold", [&](int l, const json& v, const std::string& field) {
    const float t = JsonFloat(v, where, field, 0.0f);
    for (int m = l < 0 ? 0 : l; m < (l < 0 ? L : l + 1); ++m)
      p.SetThreshold(m, t, k_min[static_cast<size_t>(m)], L);
  });
  per_layer("skip_beta", [&](int l, const json& v, const std::string& field) {
    p.SetSkipBeta(l, JsonFloat(v, where, field, 0.0f), L);
  });
  per_layer("top_p", [&](int l, const json& v, const std::string& field) {
    p.SetTopP(l, JsonFloat(v, where, field, 0.0f), L);
  });
  per_layer("scale_factor", [&](int l, const json& v, const std::string& field) {
    p.SetScaleFactor(l, JsonFloat(v, where, field, 0.0f), L);
  });
  // The layers whose shared expert is not run ("*" = every MoE layer).
  if (j.contains("disable_shared_expert")) {
    const json& layers = ArrayAt(j, "disable_shared_expert", where);
    for (size_t i = 0; i < layers.size(); ++i) {
      const int layer =
          LayerKey(layers[i], L, where + " disable_shared_expert[" + std::to_string(i) + "]");
      for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? L : layer + 1); ++l)
        if (layer >= 0 || c.IsMoeLayer(l)) p.DisableSharedExpert(l, L);
    }
  }
  if (j.contains("force")) {
    const json& force = ArrayAt(j, "force", where);
    for (size_t i = 0; i < force.size(); ++i)
      p.forced.push_back(
          ForcedRouteFromJson(force[i], c, where, "force[" + std::to_string(i) + "]"));
  }
  return p;
}

RoutingPolicy PolicyFromJsonFile(const std::string& path, const ModelConfig& config) {
  RoutingPolicy p = PolicyFromJson(ReadJsonFile(path), config, path);
  try {
    p.Validate(config);
  } catch (const Error& e) {
    Fail(path, e.what());
  }
  return p;
}

}  // namespace moe
