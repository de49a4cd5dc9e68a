#pragma once
// The FFN block of a layer. An MoE block (docs/llama-moe-spec.md §2.6, docs/model-families.md
// §2): router → the family's recipe (scores, selection key, groups, top-k, weights) → tokens
// grouped by expert, one GEMM chain per expert → weighted scatter-add → plus the shared expert.
// A dense block is one SwiGLU MLP.
#include <cstdint>
#include <vector>

#include "core/config.h"
#include "core/hooks.h"
#include "core/model_weights.h"
#include "core/routing_policy.h"

namespace moe {

// The routing decision of one layer for T tokens.
struct Routing {
  int64_t tokens = 0;
  int k = 0;                   // selections per token (kmax; -1 ids pad shorter rows)
  std::vector<float> logits;   // [T, E] router logits z (before any softmax or sigmoid)
  std::vector<int32_t> ids;    // [T, k] descending weight
  std::vector<float> weights;  // [T, k] combine weights before the scale factor
  std::vector<float> scaled;   // [T, k] weights as applied (x scale factor, or 1 when unweighted)
};

// u: [T, H] post-attention-norm input (T = span.count); out: [T, H]. `policy` may be null.
// Hooks see the executed routing, the per-expert outputs and upstream's load/importance
// statistics of this call.
void MoeLayer(const ModelConfig& config, int layer, const LayerWeights& w, const float* u,
              const TokenSpan& span, const RoutingPolicy* policy, const HookRegistry& hooks,
              float* out);

// The steps of MoeLayer, exposed for tests and analysis.
void RouterLogits(const ModelConfig& config, const LayerWeights& w, const float* u, int64_t tokens,
                  float* logits);
// Top-k by the recipe's selection key (ties toward the lower expert index), then weights, with the
// policy's interventions applied in the order routing_policy.h documents. `selection_bias` is the
// layer's e_score_correction_bias (empty without one).
Routing SelectExperts(const ModelConfig& config, int layer, std::vector<float> logits,
                      const TokenSpan& span, const RoutingPolicy* policy,
                      const Vector& selection_bias = {});

// A dense layer's routing: every token to the layer's one MLP (expert 0) with weight 1.
Routing DenseRouting(int64_t tokens);

// Each expert's entries of a routing: the token rows it serves and their coefficients (the
// scaled weights), in the order they appear. Outputs are summed expert by expert in ascending
// order and, within an expert, in this order.
struct ExpertAssignments {
  std::vector<std::vector<int32_t>> rows;  // [E][n_e]
  std::vector<std::vector<float>> coef;    // [E][n_e]
};
ExpertAssignments GroupByExpert(const Routing& routing, int num_experts);

// out[rows[i], :] += coef[i] · y[i, :] over h columns.
void AddWeightedRows(const std::vector<int32_t>& rows, const std::vector<float>& coef,
                     const float* y, int64_t h, float* out);

// The shared expert's gate g [T] (Qwen2-MoE: sigmoid(shared_expert_gate · u_t); 1 when ungated)
// and its outputs y [T, H] scaled by it.
void GateSharedExpert(const ModelConfig& config, const LayerWeights& w, const float* u, int64_t T,
                      float* y, float* g);

}  // namespace moe
