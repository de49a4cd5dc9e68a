#pragma once
// Neuron co-activation of a dense LLaMA's FFN over a corpus (docs/llama-moe-spec.md §5.1
// "Co-activation graph", upstream's feature dumping + GraphSplit accumulation). The MLP input of
// every layer leaves the engine through the kMoeInput hook (dense layers emit it too); the
// intermediate activations are recomputed here from the layer's gate_proj / up_proj:
//   kGate:   h = silu(x gate_projᵀ)                  (upstream's gate_proj template)
//   kGateUp: h = silu(x gate_projᵀ) ⊙ (x up_projᵀ)   (up_proj template, the input of down_proj)
// Upstream accumulates A += min(R, threshold) with R = κ(h)ᵀκ(h) over each dumped chunk of
// tokens (κ = |·|, "l1_norm", its default; threshold 1). Here a chunk is one token:
// A_ij = Σ_t min(|h_ti| |h_tj|, threshold), so the cap bounds one token's contribution whatever
// the window length (with chunks of a whole window, O(1) activations saturate every entry and
// the graph carries no information). Computed as one GEMM per window, |h|ᵀ|h|, minus the excess
// of the few products above the threshold. A's diagonal is left at 0.
// Memory: num_layers x I² floats.
#include <cstdint>
#include <vector>

#include "core/moe_model.h"

namespace moe {

enum class NeuronActivation { kGate, kGateUp };

struct CoactivationGraphs {
  int64_t neurons = 0;                // I
  std::vector<std::vector<float>> a;  // [layer] symmetric [I, I]
  int64_t tokens = 0;                 // tokens run
  int64_t windows = 0;                // chunks accumulated
};

// `model` must be dense (model_type llama). Windows are run one at a time.
CoactivationGraphs MeasureCoactivation(const MoeModel& model,
                                       const std::vector<std::vector<int32_t>>& windows,
                                       NeuronActivation activation, float threshold = 1.0f);

}  // namespace moe
