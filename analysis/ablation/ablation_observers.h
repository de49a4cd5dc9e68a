#pragma once
// The routing observers of the ablation pass (ablation_pass.cpp): the residual stream kept for
// the policies to resume from, and the experts executed per token.
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/hooks.h"

namespace moe::ablation {

// Keeps a copy of the residual stream entering each requested layer during one forward pass:
// the embeddings for layer 0, the output of layer l - 1 for layer l (MoeModel::ForwardFrom
// takes exactly that).
class ResidualCapture : public RoutingObserver {
 public:
  explicit ResidualCapture(std::vector<int> layers) : layers_(std::move(layers)) {}
  std::vector<HookRequest> Requests() const override {
    std::vector<HookRequest> r;
    for (int l : layers_)
      r.push_back(l == 0 ? HookRequest{HookSite::kEmbeddings, -1}
                         : HookRequest{HookSite::kHiddenOut, l - 1});
    return r;
  }
  void OnEvent(const HookEvent& ev) override {
    const int layer = ev.site == HookSite::kEmbeddings ? 0 : ev.layer + 1;
    residual_[layer].assign(ev.values, ev.values + ev.rows * ev.cols);
  }
  const std::vector<float>& Residual(int layer) const {
    const auto it = residual_.find(layer);
    if (it == residual_.end()) Fail("ablate", "internal error: no residual kept for that layer");
    return it->second;
  }

 private:
  std::vector<int> layers_;
  std::map<int, std::vector<float>> residual_;
};

// Experts executed per real token at each layer (the x axis of the quality/compute curve): sums of
// the non-negative ids of kTopkIds rows, and the rows counted.
class ExpertCounter : public RoutingObserver {
 public:
  explicit ExpertCounter(int layers) : experts_(layers, 0.0), tokens_(layers, 0.0) {}
  std::vector<HookRequest> Requests() const override { return {{HookSite::kTopkIds, -1}}; }
  void OnEvent(const HookEvent& ev) override {
    for (int64_t t = 0; t < ev.rows; ++t) {
      if (ev.tokens->real != nullptr && !ev.tokens->real[t]) continue;
      const int32_t* row = ev.ids + t * ev.cols;
      experts_[ev.layer] +=
          static_cast<double>(std::count_if(row, row + ev.cols, [](int32_t e) { return e >= 0; }));
      tokens_[ev.layer] += 1;
    }
  }
  // Per layer: experts per token; layers below `from` are taken from `below` (they ran only in
  // the baseline, and equally); NaN where no token was routed (dense layers).
  std::vector<double> PerLayer(const ExpertCounter& below, int from) const {
    std::vector<double> out(experts_.size());
    for (size_t l = 0; l < out.size(); ++l) {
      const ExpertCounter& c = static_cast<int>(l) < from ? below : *this;
      out[l] = c.tokens_[l] > 0 ? c.experts_[l] / c.tokens_[l] : std::nan("");
    }
    return out;
  }
  // The counts as [experts per layer..., tokens per layer...], and another counter's added (whole
  // numbers in doubles: exact in any order).
  std::vector<double> Counts() const {
    std::vector<double> out = experts_;
    out.insert(out.end(), tokens_.begin(), tokens_.end());
    return out;
  }
  void AddCounts(const double* counts) {
    for (size_t l = 0; l < experts_.size(); ++l) {
      experts_[l] += counts[l];
      tokens_[l] += counts[experts_.size() + l];
    }
  }

 private:
  std::vector<double> experts_, tokens_;
};

}  // namespace moe::ablation
