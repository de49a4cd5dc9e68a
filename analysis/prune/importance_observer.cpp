#include "analysis/prune/importance_observer.h"

#include <algorithm>
#include <cmath>

#include "core/moe_layer.h"

namespace moe {

ImportanceObserver::ImportanceObserver(const MoeModel& model, int64_t documents, bool output_change)
    : model_(model), output_change_(output_change) {
  const ModelConfig& c = model.config();
  sums_.documents = documents;
  sums_.layers = c.num_hidden_layers;
  sums_.experts = c.num_experts;
  const size_t n = static_cast<size_t>(documents) * c.num_hidden_layers * c.num_experts;
  sums_.routed.assign(n, 0.0);
  sums_.gate.assign(n, 0.0);
  sums_.reap.assign(n, 0.0);
  sums_.change.assign(output_change ? n : 0, 0.0);
  sums_.max_activation.assign(static_cast<size_t>(c.num_hidden_layers) * c.num_experts, 0.0);
}

std::vector<HookRequest> ImportanceObserver::Requests() const {
  std::vector<HookRequest> r = {
      {HookSite::kTopkIds, -1}, {HookSite::kTopkWeights, -1}, {HookSite::kExpertOutput, -1}};
  if (output_change_) {
    r.push_back({HookSite::kMoeInput, -1});
    r.push_back({HookSite::kMoeOutput, -1});
  }
  return r;
}

bool ImportanceObserver::Counted(const TokenSpan& span, int64_t t) const {
  if (!span.real[t] || span.document[t] < 0) return false;
  const size_t row = static_cast<size_t>(span.sequence[t]);
  return row >= record_from_.size() || span.position[t] >= record_from_[row];
}

void ImportanceObserver::OnEvent(const HookEvent& event) {
  if (!model_.config().IsMoeLayer(event.layer)) return;  // dense layers: no experts to score
  switch (event.site) {
    case HookSite::kTopkIds:
    case HookSite::kTopkWeights:
      OnRouting(event);
      break;
    case HookSite::kExpertOutput:
      OnExpertOutput(event);
      break;
    case HookSite::kMoeInput:
      input_.assign(event.values, event.values + event.rows * event.cols);
      break;
    case HookSite::kMoeOutput:
      OnMoeOutput(event);
      break;
    default:
      break;
  }
}

// Ids arrive before weights (core/moe_layer.cpp); with both, the routed counts and weights.
void ImportanceObserver::OnRouting(const HookEvent& event) {
  const size_t n = static_cast<size_t>(event.rows * event.cols);
  k_ = static_cast<int>(event.cols);
  if (event.site == HookSite::kTopkIds) {
    ids_.assign(event.ids, event.ids + n);
    return;
  }
  weights_.assign(event.values, event.values + n);
  const TokenSpan& span = *event.tokens;
  for (int64_t t = 0; t < event.rows; ++t) {
    if (!Counted(span, t)) continue;
    for (int j = 0; j < k_; ++j) {
      const int32_t e = ids_[static_cast<size_t>(t * k_ + j)];
      if (e < 0) continue;
      const size_t at = sums_.At(span.document[t], event.layer, e);
      sums_.routed[at] += 1;
      sums_.gate[at] += weights_[static_cast<size_t>(t * k_ + j)];
    }
  }
}

void ImportanceObserver::OnExpertOutput(const HookEvent& event) {
  const TokenSpan& span = *event.tokens;
  const int64_t h = event.cols;
  double& max_abs =
      sums_.max_activation[static_cast<size_t>(event.layer) * sums_.experts + event.expert];
  for (int64_t i = 0; i < event.rows; ++i) {
    const int64_t t = event.token_rows[i];
    if (!Counted(span, t)) continue;
    float g = 0;
    for (int j = 0; j < k_; ++j)
      if (ids_[static_cast<size_t>(t * k_ + j)] == event.expert)
        g = weights_[static_cast<size_t>(t * k_ + j)];
    double norm2 = 0;
    for (int64_t j = 0; j < h; ++j) {
      const double y = event.values[i * h + j];
      norm2 += y * y;
      max_abs = std::max(max_abs, std::fabs(y));
    }
    sums_.reap[sums_.At(span.document[t], event.layer, event.expert)] += g * std::sqrt(norm2);
  }
}

// For each expert, the counted tokens that picked it run the MoE block again with the expert
// disabled (reroute); the other tokens' outputs cannot change. The layer output is
// hidden + residual_multiplier x block output, so its change is the block's change times the
// multiplier.
void ImportanceObserver::OnMoeOutput(const HookEvent& event) {
  const ModelConfig& c = model_.config();
  const TokenSpan& span = *event.tokens;
  const int64_t h = event.cols;
  const int layer = event.layer;
  const double m2 = double(c.residual_multiplier) * c.residual_multiplier;
  static const HookRegistry no_hooks(0, false);
  std::vector<std::vector<int32_t>> picked(static_cast<size_t>(c.num_experts));
  for (int64_t t = 0; t < event.rows; ++t) {
    if (!Counted(span, t)) continue;
    for (int j = 0; j < k_; ++j) {
      const int32_t e = ids_[static_cast<size_t>(t * k_ + j)];
      if (e >= 0) picked[static_cast<size_t>(e)].push_back(static_cast<int32_t>(t));
    }
  }
  std::vector<float> u, out;
  std::vector<int32_t> sequence, token_id, position, document;
  std::vector<uint8_t> real;
  for (int e = 0; e < c.num_experts; ++e) {
    const std::vector<int32_t>& rows = picked[static_cast<size_t>(e)];
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size());
    u.resize(static_cast<size_t>(n * h));
    sequence.clear(), token_id.clear(), position.clear(), document.clear();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = rows[static_cast<size_t>(i)];
      std::copy_n(input_.data() + t * h, h, u.data() + i * h);
      sequence.push_back(span.sequence[t]);
      token_id.push_back(span.token_id[t]);
      position.push_back(span.position[t]);
      document.push_back(span.document[t]);
    }
    real.assign(static_cast<size_t>(n), 1);
    const TokenSpan sub{
        n, sequence.data(), token_id.data(), position.data(), document.data(), real.data()};
    const RoutingPolicy policy =
        RoutingPolicy::Disabling({{layer, e}}, DisableMode::kReroute, c.num_hidden_layers);
    out.resize(static_cast<size_t>(n * h));
    MoeLayer(c, layer, model_.weights().layers[static_cast<size_t>(layer)], u.data(), sub, &policy,
             no_hooks, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = rows[static_cast<size_t>(i)];
      double d2 = 0;
      for (int64_t j = 0; j < h; ++j) {
        const double d = double(event.values[t * h + j]) - out[static_cast<size_t>(i * h + j)];
        d2 += d * d;
      }
      sums_.change[sums_.At(span.document[t], layer, e)] += m2 * d2;
    }
  }
}

}  // namespace moe
