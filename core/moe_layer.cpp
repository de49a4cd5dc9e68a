#include "core/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/linear.h"
#include "core/ops.h"

namespace moe {

void RouterLogits(const LlamaMoeConfig& c, const LayerWeights& w, const float* u, int64_t tokens,
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

Routing SelectExperts(const LlamaMoeConfig& c, int layer, std::vector<float> logits,
                      int64_t tokens) {
  const int e = c.num_experts, k = c.num_selects;
  Routing r;
  r.tokens = tokens;
  r.k = k;
  r.logits = std::move(logits);
  r.ids.resize(static_cast<size_t>(tokens * k));
  r.weights.resize(r.ids.size());
  r.scaled.resize(r.ids.size());
  const float scale = c.multiply_gate_scores ? c.score_scale_factor[layer] : 1.0f;
  std::vector<int32_t> order(e);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = r.logits.data() + t * e;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    int32_t* ids = r.ids.data() + t * k;
    float* weights = r.weights.data() + t * k;
    for (int j = 0; j < k; ++j) {
      ids[j] = order[j];
      weights[j] = row[order[j]];
    }
    if (c.gate_use_softmax) Softmax(weights, k);
    for (int j = 0; j < k; ++j)
      r.scaled[t * k + j] = c.multiply_gate_scores ? weights[j] * scale : 1.0f;
  }
  return r;
}

namespace {

// Upstream's per-call statistics (spec §2.6 g): scores scattered into [T, E]; load counts the
// entries > 0 (so raw non-positive logits are not counted), importance sums them.
void EmitExpertLoad(const LlamaMoeConfig& c, int layer, const Routing& r, const TokenSpan& span,
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

// Runs every expert once over the tokens routed to it and adds the weighted outputs to out.
void RunExperts(const LlamaMoeConfig& c, int layer, const LayerWeights& w, const float* u,
                const Routing& r, const TokenSpan& span, const HookRegistry& hooks, float* out) {
  const int64_t h = c.hidden_size;
  const int num_experts = static_cast<int>(w.experts.size());
  // Group (token, coefficient) pairs by expert; ascending expert order fixes the sum order.
  std::vector<std::vector<int32_t>> rows(num_experts);
  std::vector<std::vector<float>> coef(num_experts);
  for (int64_t t = 0; t < r.tokens; ++t) {
    for (int j = 0; j < r.k; ++j) {
      const int32_t e = r.ids[t * r.k + j];
      if (e < 0) continue;
      rows[e].push_back(static_cast<int32_t>(t));
      coef[e].push_back(r.scaled[t * r.k + j]);
    }
  }
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(r.tokens * h));
  std::vector<float> x, gate, up, y;
  for (int e = 0; e < num_experts; ++e) {
    const int64_t n = static_cast<int64_t>(rows[e].size());
    if (n == 0) continue;
    const ExpertWeights& ew = w.experts[e];
    const int64_t width = ew.gate.rows;
    x.resize(static_cast<size_t>(n * h));  // [n, H] gathered inputs
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(x.data() + i * h, u + rows[e][i] * h, sizeof(float) * h);
    gate.resize(static_cast<size_t>(n * width));  // [n, width]
    up.resize(gate.size());
    y.resize(x.size());  // [n, H]
    MatMulTransposed(x.data(), n, ew.gate, gate.data());
    MatMulTransposed(x.data(), n, ew.up, up.data());
    SiluMul(gate.data(), up.data(), n * width);
    MatMulTransposed(gate.data(), n, ew.down, y.data());
    if (hooks.Wants(HookSite::kExpertOutput, layer)) {
      HookEvent ev;
      ev.site = HookSite::kExpertOutput;
      ev.layer = layer;
      ev.tokens = &span;
      ev.rows = n;
      ev.cols = h;
      ev.values = y.data();
      ev.expert = e;
      ev.token_rows = rows[e].data();
      hooks.Emit(ev);
    }
    for (int64_t i = 0; i < n; ++i) {
      float* dst = out + rows[e][i] * h;
      const float* src = y.data() + i * h;
      const float s = coef[e][i];
      for (int64_t j = 0; j < h; ++j) dst[j] += s * src[j];
    }
  }
}

}  // namespace

void MoeLayer(const LlamaMoeConfig& c, int layer, const LayerWeights& w, const float* u,
              int64_t tokens, const TokenSpan& span, const HookRegistry& hooks, float* out) {
  Routing r;
  if (!c.is_moe) {
    // A dense LLaMA FFN: the single expert takes every token with weight 1.
    r.tokens = tokens;
    r.k = 1;
    r.ids.assign(static_cast<size_t>(tokens), 0);
    r.weights.assign(static_cast<size_t>(tokens), 1.0f);
    r.scaled = r.weights;
  } else {
    std::vector<float> logits(static_cast<size_t>(tokens * c.num_experts));
    RouterLogits(c, w, u, tokens, logits.data());
    r = SelectExperts(c, layer, std::move(logits), tokens);
    EmitRows(hooks, HookSite::kRouterLogits, layer, span, c.num_experts, r.logits.data());
    EmitRows(hooks, HookSite::kTopkIds, layer, span, r.k, nullptr, r.ids.data());
    EmitRows(hooks, HookSite::kTopkWeights, layer, span, r.k, r.weights.data());
    EmitRows(hooks, HookSite::kTopkScaledWeights, layer, span, r.k, r.scaled.data());
    if (hooks.Wants(HookSite::kExpertLoad, layer)) EmitExpertLoad(c, layer, r, span, hooks);
  }
  RunExperts(c, layer, w, u, r, span, hooks, out);
}

}  // namespace moe
