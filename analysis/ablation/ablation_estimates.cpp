#include "analysis/ablation/ablation_estimates.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "analysis/policy/policy_json.h"
#include "analysis/stats/resampling.h"

namespace moe {
namespace {
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr int kEstimates = 3;  // ΔNLL, KL, agreement: sums kSumDeltaNll.. over kSumTokens
}  // namespace

std::vector<uint8_t> BootstrapWeights(int replicates, int64_t documents, uint64_t seed) {
  std::vector<uint8_t> weights(static_cast<size_t>(replicates) * static_cast<size_t>(documents));
  for (int b = 0; b < replicates; ++b)
    for (int64_t d = 0; d < documents; ++d)
      weights[static_cast<size_t>(b) * documents + d] =
          static_cast<uint8_t>(PoissonWeight(seed, d, b));
  return weights;
}

double AblationResult::MeanExperts() const {
  double sum = 0;
  int n = 0;
  for (double x : experts_per_layer)
    if (!std::isnan(x)) sum += x, ++n;
  return n > 0 ? sum / n : kNan;
}

AblationResult EstimatePolicy(const AblationPolicy& p, const std::vector<double>& doc_sums,
                              const std::vector<int16_t>& doc_domain, int M,
                              const std::vector<uint8_t>& weights, int B, double level) {
  AblationResult r;
  r.name = p.name;
  r.kind = p.kind;
  r.control_of = p.control_of;
  r.policy_json = PolicyToJson(p.policy).dump();
  r.first_layer = p.first_layer;
  r.layer = p.layer;
  r.expert = p.expert;
  r.r = p.r;
  r.k = p.k;
  const size_t D = doc_domain.size(), S = kAblationSums;
  // Weighted sums per domain (row M: all documents); weight 1 for the point estimate.
  auto domain_sums = [&](const uint8_t* w, std::vector<double>& sums) {
    sums.assign(static_cast<size_t>(M + 1) * S, 0.0);
    for (size_t d = 0; d < D; ++d) {
      const double weight = w == nullptr ? 1.0 : w[d];
      if (weight == 0) continue;
      for (size_t s = 0; s < S; ++s) {
        sums[static_cast<size_t>(doc_domain[d]) * S + s] += weight * doc_sums[d * S + s];
        sums[static_cast<size_t>(M) * S + s] += weight * doc_sums[d * S + s];
      }
    }
  };
  std::vector<std::vector<double>> replicate(static_cast<size_t>(kEstimates * (M + 1)),
                                             std::vector<double>(static_cast<size_t>(B), kNan));
  std::vector<double> sums;
  for (int b = 0; b < B; ++b) {
    domain_sums(weights.data() + static_cast<size_t>(b) * D, sums);
    for (int m = 0; m <= M; ++m) {
      const double* t = sums.data() + static_cast<size_t>(m) * S;
      if (t[kSumTokens] == 0) continue;
      for (int i = 0; i < kEstimates; ++i)
        replicate[static_cast<size_t>(kEstimates * m + i)][b] = t[kSumDeltaNll + i] / t[kSumTokens];
    }
  }
  domain_sums(nullptr, sums);
  for (int m = 0; m <= M; ++m) {
    const double* t = sums.data() + static_cast<size_t>(m) * S;
    AblationDomainResult d;
    d.tokens = static_cast<int64_t>(t[kSumTokens]);
    const double n = t[kSumTokens] > 0 ? t[kSumTokens] : kNan;
    d.base_nll = t[kSumBaseNll] / n;
    d.policy_nll = t[kSumPolicyNll] / n;
    Estimate* e[kEstimates] = {&d.delta_nll, &d.kl, &d.agreement};
    for (int i = 0; i < kEstimates; ++i) {
      e[i]->value = t[kSumDeltaNll + i] / n;
      e[i]->ci_low = e[i]->ci_high = kNan;
      if (B > 0)
        std::tie(e[i]->ci_low, e[i]->ci_high) =
            PercentileInterval(replicate[static_cast<size_t>(kEstimates * m + i)], level);
    }
    r.domains.push_back(d);
  }
  return r;
}

}  // namespace moe
