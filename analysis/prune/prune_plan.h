#pragma once
// Which experts `moescope prune` removes (docs/pruning.md): the lowest-scoring ones by an
// importance score (expert_importance.h), a ratio of each MoE layer's experts (per layer) or of
// all MoE layers' experts together (global; no layer is left with fewer than k experts), or a
// random draw of the same size (the control). Ties remove the lower (layer, expert) first.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_policies.h"
#include "analysis/prune/expert_importance.h"

namespace moe {

struct PruneCriterion {
  std::optional<ImportanceScore> score;  // empty: random
  std::string Name() const { return score ? ImportanceScoreName(*score) : "random"; }
};
// A score name of expert_importance.h or "random"; anything else is an Error naming `where`.
PruneCriterion ParsePruneCriterion(const std::string& name, const std::string& where);

struct PruneRequest {
  PruneCriterion criterion;
  double ratio = 0;     // share of experts removed, in (0, 1)
  bool global = false;  // rank all MoE layers' experts together
  uint64_t seed = 0;    // of the random criterion
};

struct PrunePlan {
  int layers = 0, experts = 0, top_k = 0;
  std::vector<uint8_t> moe_layer;             // [L] 1 where the layer routes
  std::vector<std::vector<int32_t>> removed;  // [L] ascending; empty in dense layers
  std::vector<std::vector<int32_t>> kept;     // [L] ascending; every expert in dense layers

  int64_t RemovedCount() const;
  // True when every MoE layer keeps the same number of experts (a config.json holds one count).
  bool Uniform() const;
  std::vector<ExpertRef> RemovedRefs() const;
};

// Throws Error naming the flag: a ratio outside (0, 1), one that removes no expert or leaves a
// layer fewer than k experts, a score the importance file did not measure (NaN).
PrunePlan PlanPruning(const ExpertImportance& importance, const PruneRequest& request);

// The pruning curve's policies (each the plan's experts disabled with reroute semantics, which a
// pruned checkpoint computes exactly where docs/pruning.md says so): the baseline, then for each
// ratio, each criterion's set "<score>-<percent>%" followed by `controls` random sets with as
// many experts removed in each layer ("<set>/random<i>", control_of the set). A later set with
// the same counts per layer (every set at one ratio in per-layer mode) shares those controls and
// names their set in its own control_of; the first set names itself.
std::vector<AblationPolicy> PruneCurvePolicies(const ModelConfig& config,
                                               const ExpertImportance& importance,
                                               const std::vector<PruneCriterion>& criteria,
                                               const std::vector<double>& ratios, bool global,
                                               int controls, uint64_t seed);

}  // namespace moe
