#include "core/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/dynamic_k.h"
#include "core/error.h"
#include "core/linear.h"
#include "core/ops.h"
#include "core/scratch_buffer.h"

namespace moe {

void RouterLogits(const ModelConfig& c, const LayerWeights& w, const float* u, int64_t tokens,
                  float* logits) {
  const int64_t e = c.num_experts;
  if (c.gate_network == GateNetwork::kLinear) {
    MatMulTransposed(u, tokens, w.router_in, logits);
    return;
  }
  std::vector<float> hidden(static_cast<size_t>(tokens * e));  // [T, E] before tanh
  MatMulTransposed(u, tokens, w.router_in, hidden.data());
  for (float& x : hidden) x = std::tanh(x);
  MatMulTransposed(hidden.data(), tokens, w.router_out, logits);
}

namespace {

bool Matches(const ForcedRoute& f, int layer, const TokenSpan& span, int64_t t) {
  return (f.layer < 0 || f.layer == layer) &&
         (f.token_id < 0 || (span.token_id && span.token_id[t] == f.token_id)) &&
         (f.position < 0 || (span.position && span.position[t] == f.position));
}

// Policies are validated once per run (RoutingPolicy::Validate); this guard only keeps a policy
// that never was from indexing outside the layer.
void CheckExpert(int32_t e, int E, int layer) {
  if (e < 0 || e >= E)
    Fail("policy layer " + std::to_string(layer),
         "expert " + std::to_string(e) + " is out of range; the policy was not validated");
}

// Step 4: the route table's row of the token's (document, position), then the matching entries
// of the forced list, in order, replace the selection.
void ApplyForcedRoutes(const RoutingPolicy& policy, int E, int layer, const TokenSpan& span,
                       int64_t t, std::vector<int32_t>& chosen) {
  auto value = [](const int32_t* v, int64_t at) { return v ? v[at] : -1; };
  if (policy.routes)
    if (const int32_t* route =
            policy.routes->Find(value(span.document, t), value(span.position, t), layer)) {
      chosen.clear();
      for (int j = 0; j < policy.routes->k; ++j)
        if (route[j] >= 0) CheckExpert(route[j], E, layer), chosen.push_back(route[j]);
    }
  for (const ForcedRoute& f : policy.forced)
    if (Matches(f, layer, span, t)) {
      for (int32_t e : f.experts) CheckExpert(e, E, layer);
      chosen = f.experts;
    }
}

// Selections per token in this layer: the layer's k, or a longer forced route.
int LayerSelections(const ModelConfig& c, int layer, const RoutingPolicy* policy) {
  if (policy == nullptr) return c.num_selects;
  const LayerPolicy* lp = policy->Layer(layer);
  int k = lp && lp->top_k ? lp->top_k : c.num_selects;
  if (policy->routes && c.IsMoeLayer(layer)) k = std::max(k, policy->routes->k);
  for (const ForcedRoute& f : policy->forced)
    if (f.layer < 0 || f.layer == layer) k = std::max(k, static_cast<int>(f.experts.size()));
  return k;
}

}  // namespace

namespace {

// The router's scores s = f(z) of one token (docs/model-families.md §2): the logits themselves,
// their softmax over all E, or their sigmoids.
void RouterScores(RouterScore score, const float* z, int E, float* s) {
  std::copy(z, z + E, s);
  if (score == RouterScore::kSoftmax) Softmax(s, E);
  if (score == RouterScore::kSigmoid)
    for (int e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + std::exp(-s[e]));
}

// Group-limited choice (DeepSeek-V3's noaux_tc): experts fall into `groups` contiguous groups; a
// group's score is the sum of its two best keys among the candidates; only the candidates in the
// `topk_groups` best groups (ties to the lower group) stay. `order` holds the candidates sorted
// by key.
void KeepBestGroups(const ModelConfig& c, const float* key, std::vector<int32_t>& order) {
  const int groups = c.router_groups, per_group = c.num_experts / groups;
  std::vector<float> score(groups, 0.0f);
  std::vector<int> counted(groups, 0);
  for (int32_t e : order)  // in descending key order, so the first two of a group are its best
    if (counted[e / per_group]++ < 2) score[e / per_group] += key[e];
  std::vector<int> ranked;
  for (int g = 0; g < groups; ++g)
    if (counted[g] > 0) ranked.push_back(g);
  std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return score[a] > score[b]; });
  std::vector<bool> kept(groups, false);
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(c.router_topk_groups); ++i)
    kept[ranked[i]] = true;
  std::erase_if(order, [&](int32_t e) { return !kept[e / per_group]; });
}

// Combine weights of the chosen experts by the model's recipe: softmax over their logits (or the
// raw logits) for a logit router, their scores otherwise; renormalized where the model does.
void RecipeWeights(const ModelConfig& c, const float* z, const float* s,
                   const std::vector<int32_t>& chosen, std::vector<float>& w) {
  w.resize(chosen.size());
  if (c.router_score == RouterScore::kLogits) {
    for (size_t j = 0; j < chosen.size(); ++j) w[j] = z[chosen[j]];
    if (c.gate_use_softmax) Softmax(w.data(), static_cast<int64_t>(w.size()));
    return;
  }
  for (size_t j = 0; j < chosen.size(); ++j) w[j] = s[chosen[j]];
  if (c.renormalize) {
    float sum = 0.0f;
    for (float x : w) sum += x;
    sum += c.renormalize_epsilon;
    for (float& x : w) x /= sum;
  }
}

}  // namespace

Routing SelectExperts(const ModelConfig& c, int layer, std::vector<float> logits,
                      const TokenSpan& span, const RoutingPolicy* policy,
                      const Vector& selection_bias) {
  const int E = c.num_experts;
  const LayerPolicy* lp = policy ? policy->Layer(layer) : nullptr;
  const DisableMode mode = policy ? policy->mode : DisableMode::kReroute;
  std::vector<bool> disabled(E, false);
  if (lp)
    for (int32_t e : lp->disabled) CheckExpert(e, E, layer), disabled[e] = true;
  const int k = lp && lp->top_k ? lp->top_k : c.num_selects;
  const int r_skip = lp ? lp->top_r_disable : 0;
  const int r_random = lp ? lp->random_r_disable : 0;
  const float scale = !c.multiply_gate_scores  ? 1.0f
                      : lp && lp->scale_factor ? *lp->scale_factor
                                               : c.score_scale_factor[layer];

  Routing r;
  r.tokens = span.count;
  r.k = LayerSelections(c, layer, policy);
  r.logits = std::move(logits);
  r.ids.assign(static_cast<size_t>(r.tokens * r.k), -1);
  r.weights.assign(r.ids.size(), 0.0f);
  r.scaled.assign(r.ids.size(), 0.0f);

  // The selection key: the logits for a logit router, else the scores plus any selection bias.
  const bool scored = c.router_score != RouterScore::kLogits;
  std::vector<float> scores(scored ? E : 0), keys(scored ? E : 0), bias(E, 0.0f);
  if (!selection_bias.empty())
    for (int e = 0; e < E; ++e) bias[e] = selection_bias.at(e);
  const bool dynamic_k = lp && HasDynamicK(*lp);
  auto value = [](const int32_t* v, int64_t at) { return v ? v[at] : -1; };
  std::vector<float> q;  // dynamic-k scores
  std::vector<int32_t> order(E), chosen;
  std::vector<bool> excluded;
  std::vector<float> w;
  for (int64_t t = 0; t < r.tokens; ++t) {
    const float* row = r.logits.data() + t * E;
    if (scored) {
      RouterScores(c.router_score, row, E, scores.data());
      for (int e = 0; e < E; ++e) keys[e] = scores[e] + bias[e];
    }
    const float* key = scored ? keys.data() : row;
    // Candidates: every expert, minus the disabled ones when re-routing.
    order.clear();
    for (int32_t e = 0; e < E; ++e)
      if (!(mode == DisableMode::kReroute && disabled[e])) order.push_back(e);
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
    if (c.router_groups > 1) KeepBestGroups(c, key, order);
    const size_t skip = std::min<size_t>(r_skip, order.size());
    if (r_random > 0) {
      // Step 2b: r of the next k + r candidates, drawn by the token's hash, are excluded.
      const int pool = static_cast<int>(std::min<size_t>(k + r_random, order.size() - skip));
      excluded.assign(static_cast<size_t>(pool), false);
      for (int rank :
           RandomRRanks(lp->random_r_seed, layer, value(span.document, t), value(span.position, t),
                        value(span.token_id, t), r_random, pool))
        excluded[static_cast<size_t>(rank)] = true;
      size_t kept = skip;
      for (size_t i = 0; i < static_cast<size_t>(pool); ++i)
        if (!excluded[i]) order[kept++] = order[skip + i];
      order.erase(order.begin() + static_cast<ptrdiff_t>(kept),
                  order.begin() + static_cast<ptrdiff_t>(skip + pool));
    }
    const auto first = order.begin() + static_cast<ptrdiff_t>(skip);
    chosen.assign(first, first + std::min<ptrdiff_t>(k, order.end() - first));
    if (dynamic_k) {
      DynamicKScores(c, row, scores.data(), q);
      ApplyDynamicK(*lp, q, chosen);
    }
    if (policy) ApplyForcedRoutes(*policy, E, layer, span, t, chosen);

    RecipeWeights(c, row, scores.data(), chosen, w);
    if (mode != DisableMode::kReroute) {
      float before = 0, after = 0;
      for (size_t j = 0; j < chosen.size(); ++j) {
        before += w[j];
        if (disabled[chosen[j]]) w[j] = 0.0f, chosen[j] = -1;
        after += w[j];
      }
      if (mode == DisableMode::kDropRenormalize && after != 0)
        for (float& x : w) x *= before / after;
    }
    // Record in descending weight (the model's own order for unforced routes).
    std::vector<size_t> idx;
    for (size_t j = 0; j < chosen.size(); ++j)
      if (chosen[j] >= 0) idx.push_back(j);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
    for (size_t j = 0; j < idx.size(); ++j) {
      const size_t at = static_cast<size_t>(t * r.k) + j;
      r.ids[at] = chosen[idx[j]];
      r.weights[at] = w[idx[j]];
      r.scaled[at] = c.multiply_gate_scores ? w[idx[j]] * scale : 1.0f;
    }
  }
  return r;
}

Routing DenseRouting(int64_t tokens) {
  Routing r;
  r.tokens = tokens;
  r.k = 1;
  r.ids.assign(static_cast<size_t>(tokens), 0);
  r.weights.assign(static_cast<size_t>(tokens), 1.0f);
  r.scaled = r.weights;
  return r;
}

ExpertAssignments GroupByExpert(const Routing& r, int num_experts) {
  ExpertAssignments a;
  a.rows.resize(static_cast<size_t>(num_experts));
  a.coef.resize(static_cast<size_t>(num_experts));
  for (int64_t t = 0; t < r.tokens; ++t) {
    for (int j = 0; j < r.k; ++j) {
      const int32_t e = r.ids[t * r.k + j];
      if (e < 0) continue;
      a.rows[e].push_back(static_cast<int32_t>(t));
      a.coef[e].push_back(r.scaled[t * r.k + j]);
    }
  }
  return a;
}

void AddWeightedRows(const std::vector<int32_t>& rows, const std::vector<float>& coef,
                     const float* y, int64_t h, float* out) {
  for (size_t i = 0; i < rows.size(); ++i) {
    float* dst = out + rows[i] * h;
    const float* src = y + static_cast<int64_t>(i) * h;
    const float s = coef[i];
    for (int64_t j = 0; j < h; ++j) dst[j] += s * src[j];
  }
}

void GateSharedExpert(const ModelConfig& c, const LayerWeights& w, const float* u, int64_t T,
                      float* y, float* g) {
  std::fill(g, g + T, 1.0f);
  if (!c.shared_expert_gated) return;
  const int64_t h = c.hidden_size;
  MatMulTransposed(u, T, w.shared_expert_gate, g);
  for (int64_t t = 0; t < T; ++t) g[t] = 1.0f / (1.0f + std::exp(-g[t]));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < h; ++j) y[t * h + j] *= g[t];
}

namespace {

// Upstream's per-call statistics (docs/llama-moe-spec.md §2.6 g): scores scattered into [T, E];
// load counts the entries > 0 (so raw non-positive logits are not counted), importance sums them.
void EmitExpertLoad(const ModelConfig& c, int layer, const Routing& r, const TokenSpan& span,
                    const HookRegistry& hooks) {
  std::vector<int32_t> load(c.num_experts, 0);
  std::vector<float> importance(c.num_experts, 0.0f);
  for (size_t i = 0; i < r.ids.size(); ++i) {
    if (r.ids[i] < 0) continue;
    if (r.weights[i] > 0) ++load[r.ids[i]];
    importance[r.ids[i]] += r.weights[i];
  }
  HookEvent ev;
  ev.site = HookSite::kExpertLoad;
  ev.layer = layer;
  ev.tokens = &span;
  ev.rows = 1;
  ev.cols = c.num_experts;
  ev.ids = load.data();
  ev.values = importance.data();
  hooks.Emit(ev);
}

void EmitRows(const HookRegistry& hooks, HookSite site, int layer, const TokenSpan& span,
              int64_t cols, const float* values, const int32_t* ids = nullptr) {
  if (!hooks.Wants(site, layer)) return;
  HookEvent ev;
  ev.site = site;
  ev.layer = layer;
  ev.tokens = &span;
  ev.rows = span.count;
  ev.cols = cols;
  ev.values = values;
  ev.ids = ids;
  hooks.Emit(ev);
}

// Hands expert e's outputs y[n, H] for the tokens `rows` to the hooks and adds them, times their
// routing coefficients, to out.
void EmitAndAddExpertOutput(const ModelConfig& c, int layer, int e, const TokenSpan& span,
                            const HookRegistry& hooks, const std::vector<int32_t>& rows,
                            const std::vector<float>& coef, const float* y, float* out) {
  const int64_t h = c.hidden_size;
  const int64_t n = static_cast<int64_t>(rows.size());
  if (hooks.Wants(HookSite::kExpertOutput, layer)) {
    HookEvent ev;
    ev.site = HookSite::kExpertOutput;
    ev.layer = layer;
    ev.tokens = &span;
    ev.rows = n;
    ev.cols = h;
    ev.values = y;
    ev.expert = e;
    ev.token_rows = rows.data();
    hooks.Emit(ev);
  }
  AddWeightedRows(rows, coef, y, h, out);
}

// A single token (a decoding step): every expert it selected reads the same input, so all their
// gate and up products share one pass of the worker threads and all their down products another,
// instead of two passes per expert.
void RunExpertsOnOneToken(const ModelConfig& c, int layer, const LayerWeights& w, const float* u,
                          const std::vector<std::vector<int32_t>>& rows,
                          const std::vector<std::vector<float>>& coef, const TokenSpan& span,
                          const HookRegistry& hooks, float* out) {
  const int64_t h = c.hidden_size;
  std::vector<int> selected;
  std::vector<int64_t> offset{0};  // offset[i]: where expert selected[i]'s intermediate starts
  for (size_t e = 0; e < rows.size(); ++e) {
    if (rows[e].empty()) continue;
    selected.push_back(static_cast<int>(e));
    offset.push_back(offset.back() + w.experts[e].gate.rows);
  }
  thread_local ScratchBuffer<float> gate_buffer, up_buffer, y_buffer;
  float* gate = gate_buffer.Get(static_cast<size_t>(offset.back()));
  float* up = up_buffer.Get(static_cast<size_t>(offset.back()));
  float* y = y_buffer.Get(static_cast<size_t>(h) * selected.size());
  std::vector<MatMulTarget> gate_up, down;
  for (size_t i = 0; i < selected.size(); ++i) {
    const ExpertWeights& ew = w.experts[selected[i]];
    gate_up.push_back({&ew.gate, gate + offset[i]});
    gate_up.push_back({&ew.up, up + offset[i]});
    down.push_back({&ew.down, y + i * h, gate + offset[i]});
  }
  MatMulTransposedMany(u, 1, gate_up);
  SiluMul(gate, up, offset.back());
  MatMulTransposedMany(nullptr, 1, down);
  for (size_t i = 0; i < selected.size(); ++i)
    EmitAndAddExpertOutput(c, layer, selected[i], span, hooks, rows[selected[i]], coef[selected[i]],
                           y + i * h, out);
}

// Runs every expert once over the tokens routed to it and adds the weighted outputs to out.
void RunExperts(const ModelConfig& c, int layer, const LayerWeights& w, const float* u,
                const Routing& r, const TokenSpan& span, const HookRegistry& hooks, float* out) {
  const int64_t h = c.hidden_size;
  const int num_experts = static_cast<int>(w.experts.size());
  // Ascending expert order fixes the sum order.
  const ExpertAssignments assigned = GroupByExpert(r, num_experts);
  const std::vector<std::vector<int32_t>>& rows = assigned.rows;
  const std::vector<std::vector<float>>& coef = assigned.coef;
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(r.tokens * h));
  const bool one_row_each = std::all_of(
      rows.begin(), rows.end(), [](const std::vector<int32_t>& e) { return e.size() <= 1; });
  if (r.tokens == 1 && one_row_each) {
    RunExpertsOnOneToken(c, layer, w, u, rows, coef, span, hooks, out);
    return;
  }
  // Every expert's rows side by side: expert e's inputs and outputs start at row first[e], its
  // intermediate activations at element first_mid[e].
  std::vector<int64_t> first{0}, first_mid{0};
  std::vector<int> busy;  // experts with tokens, the most tokens first
  for (int e = 0; e < num_experts; ++e) {
    const int64_t n = static_cast<int64_t>(rows[e].size());
    first.push_back(first.back() + n);
    first_mid.push_back(first_mid.back() + n * w.experts[e].gate.rows);
    if (n > 0) busy.push_back(e);
  }
  std::stable_sort(busy.begin(), busy.end(),
                   [&](int a, int b) { return rows[a].size() > rows[b].size(); });
  thread_local ScratchBuffer<float> x_buffer, gate_buffer, up_buffer, y_buffer;
  float* x_all = x_buffer.Get(static_cast<size_t>(first.back() * h));  // gathered inputs
  float* gate_all = gate_buffer.Get(static_cast<size_t>(first_mid.back()));
  float* up_all = up_buffer.Get(static_cast<size_t>(first_mid.back()));
  float* y_all = y_buffer.Get(static_cast<size_t>(first.back() * h));

  // Experts are independent. With several threads each takes whole experts, largest first: one
  // expert's GEMMs over its share of the tokens are too small to split well (two threads
  // measured 1.45x one on a 128-row expert of shape M, two experts side by side 1.8x).
  const bool experts_in_parallel =
      NumThreads() > 1 && busy.size() > 1 && std::all_of(busy.begin(), busy.end(), [&](int e) {
        return MatMulRunsConcurrently(w.experts[e].gate);
      });
#pragma omp parallel for schedule(dynamic, 1) if (experts_in_parallel)
  for (size_t i = 0; i < busy.size(); ++i) {
    const int e = busy[i];
    const ExpertWeights& ew = w.experts[e];
    const int64_t n = first[e + 1] - first[e];
    float* x = x_all + first[e] * h;
    float* gate = gate_all + first_mid[e];
    float* up = up_all + first_mid[e];
    for (int64_t j = 0; j < n; ++j) std::memcpy(x + j * h, u + rows[e][j] * h, sizeof(float) * h);
    MatMulTransposedMany(x, n, {{&ew.gate, gate}, {&ew.up, up}});
    SiluMul(gate, up, n * ew.gate.rows);
    MatMulTransposed(gate, n, ew.down, y_all + first[e] * h);
  }
  // Ascending expert order fixes the sum order, whatever thread ran which expert.
  for (int e = 0; e < num_experts; ++e)
    if (!rows[e].empty())
      EmitAndAddExpertOutput(c, layer, e, span, hooks, rows[e], coef[e], y_all + first[e] * h, out);
}

// The shared expert: every token, weight 1, or sigmoid(shared_expert_gate . u) when gated
// (Qwen2-MoE). Added after the routed experts, as upstream adds it to their sum.
void AddSharedExpert(const ModelConfig& c, int layer, const LayerWeights& w, const float* u,
                     const TokenSpan& span, const HookRegistry& hooks, float* out) {
  const int64_t T = span.count, h = c.hidden_size, width = c.shared_expert_width;
  const ExpertWeights& sw = w.shared_expert;
  thread_local ScratchBuffer<float> gate_buffer, up_buffer, y_buffer;
  float* gate = gate_buffer.Get(static_cast<size_t>(T * width));  // [T, F_shared]
  float* up = up_buffer.Get(static_cast<size_t>(T * width));      // [T, F_shared]
  float* y = y_buffer.Get(static_cast<size_t>(T * h));            // [T, H]
  MatMulTransposedMany(u, T, {{&sw.gate, gate}, {&sw.up, up}});
  SiluMul(gate, up, T * width);
  MatMulTransposed(gate, T, sw.down, y);
  std::vector<float> g(static_cast<size_t>(T));  // [T, 1] the gate of each token
  GateSharedExpert(c, w, u, T, y, g.data());
  EmitRows(hooks, HookSite::kSharedExpertGate, layer, span, 1, g.data());
  EmitRows(hooks, HookSite::kSharedExpertOutput, layer, span, h, y);
  for (int64_t i = 0; i < T * h; ++i) out[i] += y[i];
}

}  // namespace

void MoeLayer(const ModelConfig& c, int layer, const LayerWeights& w, const float* u,
              const TokenSpan& span, const RoutingPolicy* policy, const HookRegistry& hooks,
              float* out) {
  const int64_t tokens = span.count;
  if (!c.IsMoeLayer(layer)) {
    // A dense FFN: the layer's one MLP takes every token with weight 1. In a model that also has
    // MoE layers it is no expert, so its output reaches hooks only as moe_out.
    static const HookRegistry no_hooks(0, false);
    RunExperts(c, layer, w, u, DenseRouting(tokens), span, c.is_moe ? no_hooks : hooks, out);
    return;
  }
  std::vector<float> logits(static_cast<size_t>(tokens * c.num_experts));
  RouterLogits(c, w, u, tokens, logits.data());
  const Routing r = SelectExperts(c, layer, std::move(logits), span, policy, w.selection_bias);
  EmitRows(hooks, HookSite::kRouterLogits, layer, span, c.num_experts, r.logits.data());
  EmitRows(hooks, HookSite::kTopkIds, layer, span, r.k, nullptr, r.ids.data());
  EmitRows(hooks, HookSite::kTopkWeights, layer, span, r.k, r.weights.data());
  EmitRows(hooks, HookSite::kTopkScaledWeights, layer, span, r.k, r.scaled.data());
  if (hooks.Wants(HookSite::kExpertLoad, layer)) EmitExpertLoad(c, layer, r, span, hooks);
  RunExperts(c, layer, w, u, r, span, hooks, out);
  const LayerPolicy* lp = policy ? policy->Layer(layer) : nullptr;
  if (c.shared_expert_width > 0 && !(lp && lp->shared_expert_disabled))
    AddSharedExpert(c, layer, w, u, span, hooks, out);
}

}  // namespace moe
