#include "analysis/ablation/ablation_policies.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/stats/resampling.h"
#include "core/dynamic_k.h"
#include "core/error.h"

namespace moe {
namespace {

// Joins strings with +=, which (unlike a chain of operator+) GCC 12 does not warn about.
template <typename... T>
std::string Concat(const T&... parts) {
  std::string s;
  ((s += parts), ...);
  return s;
}

// The layers a sweep names, or every layer with a router; a dense layer named is an error.
std::vector<int> LayersOrAll(const ModelConfig& c, const std::vector<int>& layers,
                             const char* what) {
  if (layers.empty()) {
    std::vector<int> all;
    for (int l = 0; l < c.num_hidden_layers; ++l)
      if (c.IsMoeLayer(l)) all.push_back(l);
    return all;
  }
  for (int l : layers) {
    if (l < 0 || l >= c.num_hidden_layers)
      Fail(what, "layer " + std::to_string(l) + " is out of range (0.." +
                     std::to_string(c.num_hidden_layers - 1) + ")");
    if (!c.IsMoeLayer(l)) Fail(what, "layer " + std::to_string(l) + " is dense (no router)");
  }
  return layers;
}

// Policies are validated once, by the ablation pass that runs them.
AblationPolicy Finish(AblationPolicy a, const ModelConfig& c) {
  a.first_layer = FirstChangedLayer(a.policy, c);
  return a;
}

}  // namespace

int FirstChangedLayer(const RoutingPolicy& p, const ModelConfig& c) {
  int first = c.num_hidden_layers;
  int first_moe = c.num_hidden_layers;  // forced routes for every layer start here
  for (int l = c.num_hidden_layers - 1; l >= 0; --l)
    if (c.IsMoeLayer(l)) first_moe = l;
  for (const ForcedRoute& f : p.forced) first = std::min(first, f.layer < 0 ? first_moe : f.layer);
  if (p.routes) first = std::min(first, first_moe);
  // Settings on a dense layer change nothing there (routing_policy.h).
  for (int l = 0; l < static_cast<int>(p.layers.size()); ++l) {
    const LayerPolicy& lp = p.layers[static_cast<size_t>(l)];
    if (c.IsMoeLayer(l) && (!lp.disabled.empty() || lp.top_k != 0 || lp.top_r_disable != 0 ||
                            lp.random_r_disable != 0 || lp.scale_factor ||
                            lp.shared_expert_disabled || HasDynamicK(lp)))
      first = std::min(first, l);
  }
  return first;
}

AblationPolicy NoAblation(const ModelConfig& c) {
  AblationPolicy a;
  a.name = "none";
  a.kind = "none";
  return Finish(std::move(a), c);
}

std::vector<AblationPolicy> SingleExpertSweep(const ModelConfig& c, DisableMode mode,
                                              const std::vector<int>& layers) {
  std::vector<AblationPolicy> out;
  for (int l : LayersOrAll(c, layers, "--layers")) {
    for (int e = 0; e < c.num_experts; ++e) {
      AblationPolicy a;
      a.name = Concat("L", std::to_string(l), "E", std::to_string(e), "-", DisableModeName(mode));
      a.kind = "single";
      a.layer = l;
      a.expert = e;
      a.policy = RoutingPolicy::Disabling({{l, e}}, mode, c.num_hidden_layers);
      out.push_back(Finish(std::move(a), c));
    }
  }
  return out;
}

std::vector<AblationPolicy> TopRSweep(const ModelConfig& c, int max_r,
                                      const std::vector<int>& layers) {
  if (max_r < 0 || max_r >= c.num_experts)
    Fail("--top-r-max", "must be in 0.." + std::to_string(c.num_experts - 1));
  const std::vector<int> chosen = LayersOrAll(c, layers, "--layers");
  std::vector<AblationPolicy> out;
  for (int r = 0; r <= max_r; ++r) {
    AblationPolicy a;
    a.name = "top-r" + std::to_string(r);
    a.kind = "top_r";
    a.r = r;
    for (int l : chosen) a.policy.SetTopR(l, r, c.num_hidden_layers);
    out.push_back(Finish(std::move(a), c));
  }
  return out;
}

std::vector<AblationPolicy> RandomRSweep(const ModelConfig& c, int max_r, int controls,
                                         uint64_t seed, const std::vector<int>& layers) {
  if (max_r < 0 || max_r >= c.num_experts)
    Fail("--top-r-max", "must be in 0.." + std::to_string(c.num_experts - 1));
  if (controls < 0) Fail("--top-r-controls", "must be >= 0");
  const std::vector<int> chosen = LayersOrAll(c, layers, "--layers");
  std::vector<AblationPolicy> out;
  for (int r = 1; r <= max_r; ++r)
    for (int i = 0; i < controls; ++i) {
      AblationPolicy a;
      a.name = Concat("random-r", std::to_string(r), i ? Concat("/", std::to_string(i)) : "");
      a.kind = "random_r";
      a.r = r;
      a.control_of = "top-r" + std::to_string(r);
      const uint64_t draw_seed = (seed + static_cast<uint64_t>(i)) & 0x7fffffffffffffffull;
      for (int l : chosen) a.policy.SetRandomR(l, r, draw_seed, c.num_hidden_layers);
      out.push_back(Finish(std::move(a), c));
    }
  return out;
}

std::vector<AblationPolicy> KSweep(const ModelConfig& c, bool per_layer,
                                   const std::vector<int>& ks) {
  std::vector<int> values = ks;
  if (values.empty())
    for (int k = 1; k <= c.num_experts; ++k) values.push_back(k);
  for (int k : values)
    if (k < 1 || k > c.num_experts)
      Fail("--k-values", "k " + std::to_string(k) + " is out of range (1.." +
                             std::to_string(c.num_experts) + ")");
  std::vector<AblationPolicy> out;
  for (int l = per_layer ? 0 : -1; l < (per_layer ? c.num_hidden_layers : 0); ++l) {
    if (l >= 0 && !c.IsMoeLayer(l)) continue;  // a dense layer has no k
    for (int k : values) {
      AblationPolicy a;
      a.name =
          Concat(l >= 0 ? Concat("L", std::to_string(l)) : std::string(), "k", std::to_string(k));
      a.kind = std::string("k");
      a.layer = l;
      a.k = k;
      a.policy.SetTopK(l, k, c.num_hidden_layers);
      out.push_back(Finish(std::move(a), c));
    }
  }
  return out;
}

std::vector<AblationPolicy> DynamicKSweep(const ModelConfig& c, const std::string& spec,
                                          int k_min) {
  const size_t eq = spec.find('=');
  const std::string rule = spec.substr(0, eq);
  if (eq == std::string::npos || (rule != "threshold" && rule != "skip" && rule != "top-p"))
    Fail("--dynamic-k",
         "'" + spec + "' must look like threshold=T,... | skip=BETA,... | top-p=P,...");
  std::vector<AblationPolicy> out;
  std::stringstream values(spec.substr(eq + 1));
  for (std::string item; std::getline(values, item, ',');) {
    float v = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (error != std::errc() || end != item.data() + item.size() || !(v >= 0 && v <= 1))
      Fail("--dynamic-k", rule + " value '" + item + "' is not a number in [0, 1]");
    AblationPolicy a;
    a.name = rule + item;
    a.kind = "dynamic_k";
    const int L = c.num_hidden_layers;
    if (rule == "threshold") {
      if (k_min > 1) a.name += "-kmin" + std::to_string(k_min);
      a.policy.SetThreshold(-1, v, k_min, L);
    }
    if (rule == "skip") a.policy.SetSkipBeta(-1, v, L);
    if (rule == "top-p") a.policy.SetTopP(-1, v, L);
    out.push_back(Finish(std::move(a), c));
  }
  if (out.empty()) Fail("--dynamic-k", "'" + spec + "' names no value");
  return out;
}

std::vector<AblationPolicy> SharedExpertSweep(const ModelConfig& c) {
  if (c.shared_expert_width == 0) Fail("--shared-expert", "this model has no shared expert");
  std::vector<AblationPolicy> out;
  for (int l = -1; l < c.num_hidden_layers; ++l) {
    if (l >= 0 && !c.IsMoeLayer(l)) continue;
    AblationPolicy a;
    a.name = l < 0 ? "shared-off" : Concat("L", std::to_string(l), "-shared-off");
    a.kind = "shared";
    a.layer = l;
    for (int m = 0; m < c.num_hidden_layers; ++m)
      if ((l < 0 || m == l) && c.IsMoeLayer(m))
        a.policy.DisableSharedExpert(m, c.num_hidden_layers);
    out.push_back(Finish(std::move(a), c));
  }
  return out;
}

AblationPolicy ExpertSet(const ModelConfig& c, const std::string& name,
                         const std::vector<ExpertRef>& experts, DisableMode mode) {
  if (name.empty()) Fail("--set", "a set needs a name (NAME=LAYER:EXPERT,...)");
  if (experts.empty()) Fail("--set " + name, "names no experts");
  AblationPolicy a;
  a.name = name;
  a.kind = "set";
  a.policy = RoutingPolicy::Disabling(experts, mode, c.num_hidden_layers);
  return Finish(std::move(a), c);
}

std::vector<AblationPolicy> RandomControls(const ModelConfig& c, const AblationPolicy& set,
                                           int count, uint64_t seed) {
  const int E = c.num_experts;
  std::vector<AblationPolicy> out;
  // Number of experts the set disables in each layer.
  std::vector<int> per_layer(static_cast<size_t>(c.num_hidden_layers), 0);
  int possible = 1;  // whether another set of that shape exists
  for (size_t l = 0; l < set.policy.layers.size(); ++l) {
    std::set<int32_t> unique(set.policy.layers[l].disabled.begin(),
                             set.policy.layers[l].disabled.end());
    per_layer[l] = static_cast<int>(unique.size());
    if (per_layer[l] > 0 && per_layer[l] < E) possible = 2;
  }
  if (count > 0 && possible < 2)
    Fail("--random-controls", "set '" + set.name +
                                  "' disables all or none of each layer's "
                                  "experts; no other set of its size exists");
  for (int i = 0; i < count; ++i) {
    AblationPolicy a;
    a.name = set.name + "/random" + std::to_string(i);
    a.kind = "random_control";
    a.control_of = set.name;
    a.policy = set.policy;
    for (uint64_t attempt = 0;; ++attempt) {
      bool same = true;
      for (size_t l = 0; l < per_layer.size(); ++l) {
        // A seeded partial Fisher-Yates shuffle of the experts of layer l.
        std::vector<int32_t> experts(static_cast<size_t>(E));
        for (int e = 0; e < E; ++e) experts[static_cast<size_t>(e)] = e;
        for (int j = 0; j < per_layer[l]; ++j) {
          const uint64_t h = MixHash3(seed, (static_cast<uint64_t>(i) << 32) ^ l, attempt * 64 + j);
          const int pick = j + static_cast<int>(h % static_cast<uint64_t>(E - j));
          std::swap(experts[static_cast<size_t>(j)], experts[static_cast<size_t>(pick)]);
        }
        std::vector<int32_t> chosen(experts.begin(), experts.begin() + per_layer[l]);
        std::sort(chosen.begin(), chosen.end());
        std::vector<int32_t> original = set.policy.layers[l].disabled;
        std::sort(original.begin(), original.end());
        original.erase(std::unique(original.begin(), original.end()), original.end());
        same = same && chosen == original;
        a.policy.layers[l].disabled = chosen;
      }
      if (!same) break;
    }
    out.push_back(Finish(std::move(a), c));
  }
  return out;
}

void CheckUniqueNames(const std::vector<AblationPolicy>& policies) {
  std::set<std::string> seen;
  for (const AblationPolicy& p : policies)
    if (!seen.insert(p.name).second) Fail("ablation", "two policies are named '" + p.name + "'");
}

std::vector<AblationPolicy> BuildSweep(const SweepRequest& o, const ModelConfig& c) {
  std::vector<AblationPolicy> out = {NoAblation(c)};
  auto add = [&](std::vector<AblationPolicy> more) {
    out.insert(out.end(), more.begin(), more.end());
  };
  if (o.single_experts) add(SingleExpertSweep(c, o.mode, o.layers));
  if (o.top_r_max >= 0) {
    const std::vector<AblationPolicy> controls =
        RandomRSweep(c, o.top_r_max, o.top_r_controls, o.seed, o.layers);
    for (const AblationPolicy& top : TopRSweep(c, o.top_r_max, o.layers)) {
      out.push_back(top);
      for (const AblationPolicy& control : controls)
        if (control.control_of == top.name) out.push_back(control);
    }
  }
  if (!o.k_sweep.empty()) {
    if (o.k_sweep != "global" && o.k_sweep != "per-layer")
      Fail("--k-sweep", "is '" + o.k_sweep + "', expected global or per-layer");
    add(KSweep(c, o.k_sweep == "per-layer", o.k_values));
  }
  if (o.shared_expert) add(SharedExpertSweep(c));
  for (const std::string& spec : o.dynamic_k) add(DynamicKSweep(c, spec, o.threshold_k_min));
  for (const std::string& s : o.sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos) Fail("--set", "'" + s + "' must look like NAME=LAYER:EXPERT,...");
    const AblationPolicy set =
        ExpertSet(c, s.substr(0, eq),
                  ParseExpertList(s.substr(eq + 1), c.num_hidden_layers, "--set"), o.mode);
    out.push_back(set);
    add(RandomControls(c, set, o.random_controls, o.seed));
  }
  for (const std::string& file : o.policy_files) {
    AblationPolicy p;
    p.name = std::filesystem::path(file).stem().string();
    p.kind = "custom";
    p.policy = PolicyFromJsonFile(file, c);
    p.first_layer = FirstChangedLayer(p.policy, c);
    out.push_back(std::move(p));
  }
  if (out.size() == 1)
    Fail("ablate",
         "choose a sweep: --single-experts, --top-r-max, --k-sweep, --shared-expert, --dynamic-k, "
         "--set or --policy");
  return out;
}

}  // namespace moe
