#include "analysis/split/coactivation_measure.h"

#include <algorithm>
#include <cmath>

#include "core/batch.h"
#include "core/error.h"
#include "core/linear.h"
#include "core/ops.h"

namespace moe {
namespace {

class CoactivationObserver : public RoutingObserver {
 public:
  CoactivationObserver(const MoeModel& model, NeuronActivation activation, float threshold,
                       CoactivationGraphs& out)
      : model_(model), activation_(activation), threshold_(threshold), out_(out) {}

  std::vector<HookRequest> Requests() const override { return {{HookSite::kMoeInput, -1}}; }

  void OnEvent(const HookEvent& ev) override {
    const ExpertWeights& w = model_.weights().layers[static_cast<size_t>(ev.layer)].experts[0];
    const int64_t n = out_.neurons;
    // Real tokens only.
    std::vector<int64_t> rows;
    for (int64_t t = 0; t < ev.rows; ++t)
      if (ev.tokens == nullptr || ev.tokens->real == nullptr || ev.tokens->real[t])
        rows.push_back(t);
    const int64_t T = static_cast<int64_t>(rows.size()), H = ev.cols;
    if (T == 0) return;
    x_.resize(static_cast<size_t>(T * H));
    for (int64_t r = 0; r < T; ++r) std::copy_n(ev.values + rows[r] * H, H, x_.data() + r * H);
    gate_.resize(static_cast<size_t>(T * n));
    MatMulTransposed(x_.data(), T, w.gate, gate_.data());
    if (activation_ == NeuronActivation::kGateUp) {
      up_.resize(static_cast<size_t>(T * n));
      MatMulTransposed(x_.data(), T, w.up, up_.data());
      SiluMul(gate_.data(), up_.data(), T * n);
    } else {
      for (float& g : gate_) g = g / (1.0f + std::exp(-g));
    }
    // kappa(h)ᵀ as [I, T], then R = kᵀk = (kᵀ)(kᵀ)ᵀ.
    kt_.resize(static_cast<size_t>(n * T));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) kt_[i * T + t] = std::fabs(gate_[t * n + i]);
    r_.resize(static_cast<size_t>(n * n));
    const Matrix kt{DType::kF32, kt_.data(), n, T};
    MatMulTransposed(kt_.data(), n, kt, r_.data());
    // R now holds sum_t k_ti k_tj; take off what the per-token cap removes. A product can pass
    // the threshold only between neurons with k_ti * max_j k_tj > threshold, usually few.
    for (int64_t t = 0; t < T; ++t) {
      const float* k = gate_.data() + t * n;  // signed activations; |.| below
      float kmax = 0;
      for (int64_t i = 0; i < n; ++i) kmax = std::max(kmax, std::fabs(k[i]));
      if (kmax * kmax <= threshold_) continue;
      large_.clear();
      for (int64_t i = 0; i < n; ++i)
        if (std::fabs(k[i]) * kmax > threshold_) large_.push_back(i);
      for (int64_t i : large_)
        for (int64_t j : large_) {
          const float excess = std::fabs(k[i]) * std::fabs(k[j]) - threshold_;
          if (excess > 0) r_[i * n + j] -= excess;
        }
    }
    std::vector<float>& a = out_.a[static_cast<size_t>(ev.layer)];
    for (int64_t i = 0; i < n; ++i) {
      float* row = a.data() + i * n;
      const float* ri = r_.data() + i * n;
      for (int64_t j = 0; j < n; ++j)
        if (j != i) row[j] += ri[j];
    }
  }

 private:
  const MoeModel& model_;
  NeuronActivation activation_;
  float threshold_;
  CoactivationGraphs& out_;
  std::vector<float> x_, gate_, up_, kt_, r_;
  std::vector<int64_t> large_;
};

}  // namespace

CoactivationGraphs MeasureCoactivation(const MoeModel& model,
                                       const std::vector<std::vector<int32_t>>& windows,
                                       NeuronActivation activation, float threshold) {
  const ModelConfig& c = model.config();
  if (c.is_moe) Fail("co-activation", "the model already has experts; measure a dense LLaMA");
  CoactivationGraphs out;
  out.neurons = c.intermediate_size;
  out.a.assign(static_cast<size_t>(c.num_hidden_layers),
               std::vector<float>(static_cast<size_t>(out.neurons * out.neurons), 0.0f));
  CoactivationObserver observer(model, activation, threshold, out);
  const HookGuard guard = model.hooks().Add(&observer);
  for (const std::vector<int32_t>& ids : windows) {
    model.Forward(Batch::Single(ids));
    out.tokens += static_cast<int64_t>(ids.size());
    ++out.windows;
  }
  // R is symmetric up to the GEMM's rounding; make A exactly symmetric.
  const int64_t n = out.neurons;
  for (std::vector<float>& a : out.a)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) {
        const float s = 0.5f * (a[i * n + j] + a[j * n + i]);
        a[i * n + j] = a[j * n + i] = s;
      }
  return out;
}

}  // namespace moe
