#include "analysis/split/scale_calibration.h"

#include <cmath>

#include "core/batch.h"
#include "core/error.h"

namespace moe {
namespace {

// Sums of L1 norms per layer: of the residual stream the FFN output is added to, and of that
// output. The residual is rebuilt exactly as the engine forms it (stream + attention output).
class NormObserver : public RoutingObserver {
 public:
  NormObserver(int layers, int last_layer)
      : last_(last_layer), residual_(layers, 0.0), output_(layers, 0.0) {}

  std::vector<HookRequest> Requests() const override {
    return {{HookSite::kEmbeddings, -1},
            {HookSite::kAttentionOutput, -1},
            {HookSite::kMoeOutput, -1},
            {HookSite::kHiddenOut, -1}};
  }

  void OnEvent(const HookEvent& ev) override {
    const size_t n = static_cast<size_t>(ev.rows * ev.cols);
    switch (ev.site) {
      case HookSite::kEmbeddings:
      case HookSite::kHiddenOut:
        stream_.assign(ev.values, ev.values + n);
        break;
      case HookSite::kAttentionOutput:
        if (ev.layer <= last_) residual_[ev.layer] += L1(ev, true);
        break;
      case HookSite::kMoeOutput:
        if (ev.layer <= last_) output_[ev.layer] += L1(ev, false);
        break;
      default:
        break;
    }
  }

  const std::vector<double>& residual() const { return residual_; }
  const std::vector<double>& output() const { return output_; }

 private:
  // Sum over real tokens of ||values_t||₁, or of ||stream_t + values_t||₁ with `add_stream`.
  double L1(const HookEvent& ev, bool add_stream) const {
    double total = 0;
    for (int64_t t = 0; t < ev.rows; ++t) {
      if (ev.tokens != nullptr && ev.tokens->real != nullptr && !ev.tokens->real[t]) continue;
      const float* v = ev.values + t * ev.cols;
      const float* s = stream_.data() + t * ev.cols;
      for (int64_t j = 0; j < ev.cols; ++j) {
        const float x = add_stream ? s[j] + v[j] : v[j];
        total += std::fabs(static_cast<double>(x));
      }
    }
    return total;
  }

  int last_;
  std::vector<float> stream_;
  std::vector<double> residual_, output_;
};

std::vector<double> Ratios(const NormObserver& o) {
  std::vector<double> r(o.residual().size());
  for (size_t l = 0; l < r.size(); ++l) r[l] = o.residual()[l] / o.output()[l];
  return r;
}

}  // namespace

std::vector<double> ResidualToOutputRatios(const MoeModel& model,
                                           const std::vector<std::vector<int32_t>>& windows,
                                           int64_t* tokens) {
  const int layers = model.config().num_hidden_layers;
  NormObserver observer(layers, layers - 1);
  const HookGuard guard = model.hooks().Add(&observer);
  int64_t n = 0;
  for (const std::vector<int32_t>& ids : windows) {
    model.ResidualBefore(Batch::Single(ids), layers);
    n += static_cast<int64_t>(ids.size());
  }
  if (tokens != nullptr) *tokens = n;
  return Ratios(observer);
}

ScaleCalibration CalibrateScaleFactors(const MoeModel& dense, const ModelConfig& moe_config,
                                       const ModelWeights& moe_weights,
                                       const std::vector<std::vector<int32_t>>& windows) {
  if (!moe_config.multiply_gate_scores)
    Fail("--calibrate",
         "needs multiply_gate_scores: without it the score scale factor has no "
         "effect");
  ScaleCalibration c;
  c.r_dense = ResidualToOutputRatios(dense, windows, &c.tokens);
  const int layers = moe_config.num_hidden_layers;
  ModelConfig config = moe_config;
  config.score_scale_factor.assign(static_cast<size_t>(layers), 1.0f);
  for (int l = 0; l < layers; ++l) {
    const MoeModel moe(config, moe_weights);
    NormObserver observer(layers, l);
    const HookGuard guard = moe.hooks().Add(&observer);
    for (const std::vector<int32_t>& ids : windows) moe.ResidualBefore(Batch::Single(ids), l + 1);
    const double r_moe = observer.residual()[l] / observer.output()[l];
    const double sf = r_moe / c.r_dense[l];
    if (!std::isfinite(sf) || sf <= 0)
      Fail("--calibrate", "layer " + std::to_string(l) + " gives no usable scale factor (r_moe " +
                              std::to_string(r_moe) + ", r_dense " + std::to_string(c.r_dense[l]) +
                              "): the FFN output is zero on this corpus");
    c.r_moe.push_back(r_moe);
    config.score_scale_factor[static_cast<size_t>(l)] = static_cast<float>(sf);
  }
  c.scale_factors = config.score_scale_factor;
  return c;
}

}  // namespace moe
