#pragma once
// What an ablation reports for one policy (docs/routing-metrics.md §2.9): per domain and overall,
// the mean ΔNLL = NLL(policy) − NLL(baseline) over next-token predictions, the mean KL from the
// baseline next-token distribution to the policy's, and top-1 agreement, each with a bootstrap
// confidence interval over documents; optionally the per-token values.
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_policies.h"

namespace moe {

struct Estimate {
  double value = 0, ci_low = 0, ci_high = 0;  // NaN interval without bootstrap
};

struct AblationDomainResult {
  int64_t tokens = 0;  // scored next-token predictions
  double base_nll = 0, policy_nll = 0;
  Estimate delta_nll, kl, agreement;
};

struct AblationResult {
  std::string name, kind, control_of, policy_json;
  int first_layer = 0, layer = -1, expert = -1, r = -1, k = -1;
  std::vector<AblationDomainResult> domains;  // [M + 1]; M = all domains
  // Experts executed per token at each layer under the policy, over the real tokens of every
  // window run (NaN at dense layers; empty in files written before it was recorded).
  std::vector<double> experts_per_layer;  // [L]
  double MeanExperts() const;             // over the layers that have a value; NaN if none
  // Per scored token, in corpus order (empty when not stored).
  std::vector<float> delta_nll, kl;
  std::vector<int8_t> agree;
};

}  // namespace moe
