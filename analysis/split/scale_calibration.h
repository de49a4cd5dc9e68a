#pragma once
// Layer-wise score scale factors (docs/llama-moe-spec.md §5.4, as upstream's
// get_layer_wise_score_scale_factor.py computes them): per layer,
// r_l = mean_t ||residual_t||₁ / mean_t ||mlp_out_t||₁ over the corpus tokens, where
// residual_t is the residual stream that the FFN output is added to (after the attention add)
// and mlp_out_t the FFN (or MoE) output. The dense model gives r_dense_l; the MoE model starts
// with sf = 1 in every layer and, layer by layer (earlier layers already corrected), gets
// sf_l = r_moe_l / r_dense_l, so its FFN-to-residual ratio matches the dense model's.
// Activations leave the engine through hooks only (kEmbeddings, kAttentionOutput, kMoeOutput,
// kHiddenOut).
#include <cstdint>
#include <vector>

#include "core/moe_model.h"

namespace moe {

// r_l for every layer, one forward per window. `windows` are token ids run on their own.
std::vector<double> ResidualToOutputRatios(const MoeModel& model,
                                           const std::vector<std::vector<int32_t>>& windows,
                                           int64_t* tokens = nullptr);

struct ScaleCalibration {
  std::vector<double> r_dense;       // [L]
  std::vector<double> r_moe;         // [L] measured with sf = 1 in this layer
  std::vector<float> scale_factors;  // [L] r_moe / r_dense
  int64_t tokens = 0;
};

// `moe` must use multiply_gate_scores (otherwise the factor has no effect). The dense model and
// the MoE model share every weight but the FFN. Layer l is measured by running layers 0..l
// with the factors found so far, so the corpus is run L + 1 times in all (once for the dense
// model).
ScaleCalibration CalibrateScaleFactors(const MoeModel& dense, const ModelConfig& moe_config,
                                       const ModelWeights& moe_weights,
                                       const std::vector<std::vector<int32_t>>& windows);

}  // namespace moe
