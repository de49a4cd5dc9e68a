#pragma once
// Per-domain estimates of one policy from its per-document sums: ratios of sums over the
// documents of each domain (and of all documents), with percentile bootstrap intervals whose
// replicates reweight whole documents (Poisson weights shared by every policy of a run, so
// policies are compared on the same resamples).
#include <cstdint>
#include <vector>

#include "analysis/ablation/ablation_policies.h"
#include "analysis/ablation/ablation_result.h"

namespace moe {

// Per-document sums of one policy: [D, kAblationSums].
enum AblationSum { kSumTokens, kSumBaseNll, kSumPolicyNll, kSumDeltaNll, kSumKl, kSumAgree };
constexpr int kAblationSums = 6;

// Poisson(1) bootstrap weights per (replicate, document): [B, D].
std::vector<uint8_t> BootstrapWeights(int replicates, int64_t documents, uint64_t seed);

// The result of `policy` (without per-token values): domains [M + 1], row M for all documents.
AblationResult EstimatePolicy(const AblationPolicy& policy, const std::vector<double>& doc_sums,
                              const std::vector<int16_t>& doc_domain, int domains,
                              const std::vector<uint8_t>& weights, int replicates, double level);

}  // namespace moe
