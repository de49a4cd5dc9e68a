#pragma once
// The pruned (or merged) checkpoint of `moescope prune` (docs/pruning.md): every MoE layer keeps
// the experts of a PrunePlan, renumbered 0..E'-1 in their old order; router rows (and dots1's
// selection bias) of removed experts are dropped; config.json gets the family's expert count
// (num_experts, num_local_experts, n_routed_experts) and, for LLaMA-MoE, size_experts,
// intermediate_size and the score_scale_factor the model had (so a null E/K stays what it was).
// Everything else is copied unchanged into one model.safetensors with the tokenizer files.
//
// Merging folds each removed expert into the kept expert of its layer whose router row is most
// similar (cosine similarity of the rows of the router's weight, as M-SMoE groups experts by
// their routing), then each kept expert's gate, up and down matrices become the average of its
// group weighted by the experts' routed-token counts (M-SMoE / HC-SMoE frequency-weighted
// merging; equal weights when no member was routed). The kept expert's router row is unchanged.
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/prune/prune_plan.h"

namespace moe {

struct PruneWriteOptions {
  bool merge = false;
  std::vector<int64_t> routed;  // [L * E] routed tokens (ExpertImportance::routed), for merging
};

struct MergeAssignment {
  int layer = 0, removed = 0, into = 0;  // old expert ids
  double similarity = 0;                 // cosine of the two router rows
};

struct PruneWriteResult {
  int experts_before = 0, experts_after = 0, top_k = 0;
  std::string count_key;  // the config key that holds the expert count
  // The pruned checkpoint computes exactly what the engine computes with the removed experts
  // disabled under reroute semantics (without merging). False for softmax-over-all-experts
  // routers without renormalization (OLMoE / Qwen with norm_topk_prob false), whose combine
  // weights' denominator loses the removed experts.
  bool equals_reroute = false;
  std::vector<MergeAssignment> merges;
};

// Which kept expert each removed expert merges into, by router-row cosine similarity (ties to the
// lower expert). `router` is the layer's [E, H] router weight as floats.
std::vector<MergeAssignment> MergeTargets(int layer, const std::vector<float>& router, int64_t h,
                                          const std::vector<int32_t>& removed,
                                          const std::vector<int32_t>& kept);

// Frequency-weighted average of `members`' matrices (each n floats), weights `counts`.
std::vector<float> WeightedAverage(const std::vector<const float*>& members,
                                   const std::vector<double>& counts, size_t n);

// Throws Error naming the file and field: a plan for another model shape, a plan that removes
// different numbers of experts per layer, a LLaMA-MoE MLP gate (its hidden layer is E wide, so no
// expert can leave without changing every logit), a group-limited router (dots1 n_group > 1),
// merging experts of different widths, `out_dir` equal to `in_dir`.
PruneWriteResult WritePrunedCheckpoint(const std::filesystem::path& in_dir, const PrunePlan& plan,
                                       const std::filesystem::path& out_dir,
                                       const PruneWriteOptions& options);

}  // namespace moe
