#pragma once
// The decoder body of every supported family: embedding → layers (attention, then an MoE or
// dense FFN block) → final norm. Heads live in heads.h.
#include <vector>

#include "core/batch.h"
#include "core/config.h"
#include "core/decode_step.h"
#include "core/hooks.h"
#include "core/kv_cache.h"
#include "core/model_weights.h"
#include "core/routing_policy.h"

namespace moe {

class MoeModel {
 public:
  MoeModel(ModelConfig config, ModelWeights weights);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  HookRegistry& hooks() const { return hooks_; }
  // What a decode step in one parallel region needs of the weights (core/decode_step.h).
  const OneRegionDecodePlan& one_region_plan() const { return one_region_plan_; }

  // Final hidden states [B*S, H] (after the final norm). With a cache, the batch continues the
  // cached sequences (positions and mask must say so) and the cache is advanced; without one,
  // the batch stands alone; a cache too small for the batch grows. Throws Error for ids outside
  // the vocabulary or sequences past config().max_sequence_length() (no limit with RoPE
  // scaling). A routing policy intervenes in every MoE layer; the caller validates it once per run
  // (RoutingPolicy::Validate), as Generate, RecordForward and the analysis runs do.
  std::vector<float> Forward(const Batch& batch, KvCache* cache = nullptr,
                             const RoutingPolicy* policy = nullptr) const;

  // For ablations that change layers >= l only: the residual stream entering layer l [T, H]
  // can be computed once and reused. ForwardFrom(batch, l, ResidualBefore(batch, l)) equals
  // Forward(batch) (no KV cache in either).
  std::vector<float> ResidualBefore(const Batch& batch, int layer,
                                    const RoutingPolicy* policy = nullptr) const;
  std::vector<float> ForwardFrom(const Batch& batch, int layer, std::vector<float> residual,
                                 const RoutingPolicy* policy = nullptr) const;

 private:
  // Layers [first, last) on `hidden` (the embeddings when first == 0), then the final norm if
  // asked.
  std::vector<float> Run(const Batch& batch, int first, int last, std::vector<float> hidden,
                         KvCache* cache, const RoutingPolicy* policy, bool final_norm) const;
  void Layer(int layer, const Batch& batch, const TokenSpan& span, const RoutingPolicy* policy,
             KvCache& cache, std::vector<float>& hidden) const;

  ModelConfig config_;
  ModelWeights weights_;
  OneRegionDecodePlan one_region_plan_;
  // Observers are attached to a const model too: hooks watch, they do not change the weights.
  mutable HookRegistry hooks_;
};

}  // namespace moe
