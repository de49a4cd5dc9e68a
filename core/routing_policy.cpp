#include "core/routing_policy.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "core/config.h"
#include "core/error.h"

namespace moe {

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
  return forced.empty() && !routes &&
         std::all_of(layers.begin(), layers.end(), [](const LayerPolicy& p) {
           return p.disabled.empty() && p.top_k == 0 && p.top_r_disable == 0 &&
                  p.random_r_disable == 0 && !p.scale_factor && !p.shared_expert_disabled &&
                  p.threshold == 0 && p.skip_beta == 0 && p.top_p == 0;
         });
}

const LayerPolicy* RoutingPolicy::Layer(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers.size())) return nullptr;
  return &layers[layer];
}

namespace {

void CheckFraction(float v, const char* name, const std::string& where) {
  if (!(v >= 0 && v <= 1))
    Fail(where, std::string(name) + " " + std::to_string(v) + " is out of range [0, 1]");
}

void ValidateDynamicK(const LayerPolicy& p, const ModelConfig& c, int layer,
                      const std::string& where) {
  CheckFraction(p.threshold, "threshold", where);
  CheckFraction(p.skip_beta, "skip_beta", where);
  CheckFraction(p.top_p, "top_p", where);
  const int k = p.top_k ? p.top_k : c.num_selects;
  if (p.threshold_k_min < 1 || (c.IsMoeLayer(layer) && p.threshold_k_min > k))
    Fail(where, "threshold_k_min " + std::to_string(p.threshold_k_min) + " is out of range (1.." +
                    std::to_string(k) + ")");
}

// Every row's experts in range and distinct; dense layers without routes.
void ValidateRouteTable(const RouteTable& t, const ModelConfig& c) {
  const std::string where = "policy route table";
  if (t.layers != c.num_hidden_layers)
    Fail(where, "has " + std::to_string(t.layers) + " layers, the model has " +
                    std::to_string(c.num_hidden_layers));
  if (t.k < 1 || t.k > c.num_experts)
    Fail(where, "k " + std::to_string(t.k) + " is out of range (1.." +
                    std::to_string(c.num_experts) + ")");
  if (t.doc_offset.empty() || t.doc_offset.front() != 0 ||
      !std::is_sorted(t.doc_offset.begin(), t.doc_offset.end()) ||
      static_cast<int64_t>(t.ids.size()) != t.rows() * t.layers * t.k)
    Fail(where, "rows do not match its document offsets");
  for (int64_t row = 0; row < t.rows(); ++row)
    for (int l = 0; l < t.layers; ++l) {
      const int32_t* ids = t.ids.data() + (row * t.layers + l) * t.k;
      const std::string at =
          "row " + std::to_string(row) + " layer " + std::to_string(l) + ": expert ";
      if (c.IsMoeLayer(l) && ids[0] < 0)
        Fail(where, "row " + std::to_string(row) + " layer " + std::to_string(l) +
                        " names no expert (the first column is -1)");
      for (int j = 0; j < t.k; ++j) {
        if (ids[j] == -1) continue;
        if (!c.IsMoeLayer(l)) Fail(where, at + std::to_string(ids[j]) + " in a dense layer");
        if (ids[j] < 0 || ids[j] >= c.num_experts)
          Fail(where, at + std::to_string(ids[j]) + " is out of range (0.." +
                          std::to_string(c.num_experts - 1) + ")");
        if (std::find(ids, ids + j, ids[j]) != ids + j)
          Fail(where, at + std::to_string(ids[j]) + " appears twice");
      }
    }
}

}  // namespace

const int32_t* RouteTable::Find(int32_t document, int32_t position, int layer) const {
  if (document < 0 || position < 0 || layer < 0 || layer >= layers ||
      static_cast<size_t>(document) + 1 >= doc_offset.size())
    return nullptr;
  const int64_t row = doc_offset[static_cast<size_t>(document)] + position;
  if (row >= doc_offset[static_cast<size_t>(document) + 1]) return nullptr;
  return ids.data() + (row * layers + layer) * k;
}

void RoutingPolicy::Validate(const ModelConfig& c) const {
  const int E = c.num_experts, L = c.num_hidden_layers;
  if (!empty() && !c.is_moe) Fail("policy", "this model has no router to intervene on");
  if (!layers.empty() && static_cast<int>(layers.size()) != L)
    Fail("policy", "has " + std::to_string(layers.size()) + " layer entries, the model has " +
                       std::to_string(L));
  for (int l = 0; l < static_cast<int>(layers.size()); ++l) {
    const LayerPolicy& p = layers[l];
    const std::string where = "policy layer " + std::to_string(l);
    // Settings made for every layer (top-k, top-r, scale, shared expert) pass over dense layers;
    // experts named in a dense layer are an error.
    if (!p.disabled.empty() && !c.IsMoeLayer(l))
      Fail(where, "is a dense layer; it has no experts to disable");
    if (p.shared_expert_disabled && c.shared_expert_width == 0)
      Fail(where, "disables the shared expert of a model that has none");
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
    if (p.random_r_disable < 0 || p.random_r_disable >= E)
      Fail(where, "random_r " + std::to_string(p.random_r_disable) + " is out of range (0.." +
                      std::to_string(E - 1) + ")");
    if (p.random_r_seed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      Fail(where, "random_r_seed " + std::to_string(p.random_r_seed) +
                      " is out of range (0..9223372036854775807)");
    const int available = (mode == DisableMode::kReroute ? E - static_cast<int>(d.size()) : E);
    if (p.top_r_disable >= available)
      Fail(where, "top_r " + std::to_string(p.top_r_disable) + " leaves no expert to route to");
    if (p.random_r_disable > 0 && p.top_r_disable + p.random_r_disable >= available)
      Fail(where, "random_r " + std::to_string(p.random_r_disable) +
                      (p.top_r_disable ? " with top_r " + std::to_string(p.top_r_disable) : "") +
                      " leaves no expert to route to");
    if (p.scale_factor && !(*p.scale_factor >= 0)) Fail(where, "scale_factor must be >= 0");
    ValidateDynamicK(p, c, l, where);
  }
  if (routes) ValidateRouteTable(*routes, c);
  for (size_t i = 0; i < forced.size(); ++i) {
    const ForcedRoute& f = forced[i];
    const std::string where = "policy force[" + std::to_string(i) + "]";
    if (f.layer < -1 || f.layer >= L)
      Fail(where, "layer " + std::to_string(f.layer) + " is out of range");
    if (f.layer >= 0 && !c.IsMoeLayer(f.layer))
      Fail(where, "layer " + std::to_string(f.layer) + " is a dense layer; it has no router");
    if (f.experts.empty()) Fail(where, "names no experts");
    for (size_t j = 0; j < f.experts.size(); ++j) {
      const int32_t e = f.experts[j];
      if (e < 0 || e >= E)
        Fail(where,
             "expert " + std::to_string(e) + " is out of range (0.." + std::to_string(E - 1) + ")");
      if (std::find(f.experts.begin(), f.experts.begin() + j, e) != f.experts.begin() + j)
        Fail(where, "names expert " + std::to_string(e) + " twice");
    }
    // -1 is "any" for token_id and position; any other negative value would match nothing in a
    // run and used to be read as "any" as well.
    if (f.position < -1) Fail(where, "position " + std::to_string(f.position) + " is negative");
    if (f.token_id < -1 || f.token_id >= c.vocab_size)
      Fail(where, "token_id " + std::to_string(f.token_id) + " is outside the vocabulary");
  }
}

int RoutingPolicy::MaxSelections(const ModelConfig& c) const {
  int k = routes ? std::max(c.num_selects, routes->k) : c.num_selects;
  for (const LayerPolicy& p : layers) k = std::max(k, p.top_k);
  for (const ForcedRoute& f : forced) k = std::max(k, static_cast<int>(f.experts.size()));
  return k;
}

LayerPolicy& RoutingPolicy::LayerToChange(int layer, int num_layers) {
  if (layer < 0 || layer >= num_layers)
    Fail("policy", "layer " + std::to_string(layer) + " is out of range (the model has layers 0.." +
                       std::to_string(num_layers - 1) + ")");
  if (layers.empty()) layers.resize(static_cast<size_t>(num_layers));
  if (static_cast<int>(layers.size()) != num_layers)
    Fail("policy", "has " + std::to_string(layers.size()) + " layer entries, the model has " +
                       std::to_string(num_layers));
  return layers[static_cast<size_t>(layer)];
}

RoutingPolicy& RoutingPolicy::Disable(ExpertRef e, int num_layers) {
  LayerToChange(e.layer, num_layers).disabled.push_back(e.expert);
  return *this;
}

RoutingPolicy& RoutingPolicy::SetTopK(int layer, int k, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).top_k = k;
  return *this;
}

RoutingPolicy& RoutingPolicy::SetTopR(int layer, int r, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).top_r_disable = r;
  return *this;
}

RoutingPolicy& RoutingPolicy::SetRandomR(int layer, int r, uint64_t seed, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l) {
    LayerPolicy& p = LayerToChange(l, num_layers);
    p.random_r_disable = r;
    p.random_r_seed = seed;
  }
  return *this;
}

RoutingPolicy& RoutingPolicy::SetScaleFactor(int layer, float factor, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).scale_factor = factor;
  return *this;
}

RoutingPolicy& RoutingPolicy::DisableSharedExpert(int layer, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).shared_expert_disabled = true;
  return *this;
}

RoutingPolicy& RoutingPolicy::SetThreshold(int layer, float t, int k_min, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l) {
    LayerPolicy& p = LayerToChange(l, num_layers);
    p.threshold = t;
    p.threshold_k_min = k_min;
  }
  return *this;
}

RoutingPolicy& RoutingPolicy::SetSkipBeta(int layer, float beta, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).skip_beta = beta;
  return *this;
}

RoutingPolicy& RoutingPolicy::SetTopP(int layer, float p, int num_layers) {
  for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
    LayerToChange(l, num_layers).top_p = p;
  return *this;
}

RoutingPolicy RoutingPolicy::Disabling(const std::vector<ExpertRef>& experts, DisableMode mode,
                                       int num_layers) {
  RoutingPolicy p;
  p.mode = mode;
  for (const ExpertRef& e : experts) p.Disable(e, num_layers);
  return p;
}

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer, as analysis/stats/resampling.h's MixHash
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Word(int32_t v) {
  return static_cast<uint64_t>(static_cast<uint32_t>(v));
}

}  // namespace

std::vector<int> RandomRRanks(uint64_t seed, int layer, int32_t document, int32_t position,
                              int32_t token_id, int r, int pool) {
  r = std::clamp(r, 0, std::max(pool, 0));
  std::vector<int> ranks(static_cast<size_t>(std::max(pool, 0)));
  for (int i = 0; i < pool; ++i) ranks[static_cast<size_t>(i)] = i;
  const uint64_t token = Mix(
      Mix(Mix(Mix(Mix(seed) ^ Word(layer)) ^ Word(document)) ^ Word(position)) ^ Word(token_id));
  for (int j = 0; j < r; ++j) {
    const double u = static_cast<double>(Mix(token ^ static_cast<uint64_t>(j)) >> 11) * 0x1.0p-53;
    const int pick = std::min(pool - 1, j + static_cast<int>(u * (pool - j)));
    std::swap(ranks[static_cast<size_t>(j)], ranks[static_cast<size_t>(pick)]);
  }
  ranks.resize(static_cast<size_t>(r));
  return ranks;
}

}  // namespace moe
