#pragma once
// Dynamic-k routing (step 3b of core/routing_policy.h): after top-k, a token may run fewer of its
// k selections. Three rules, applied in this order when set:
//   threshold t (with k_min): keep the first k_min selections, then each next one only while
//     q_e >= t * q_max, stopping at the first that fails;
//   skip beta (NAEE's dynamic skipping): drop every selection after the first whose
//     q_e < beta * q_first (for top-2 models: skip the second expert when its weight is below
//     beta times the first);
//   top-p p: keep the smallest prefix of the selections whose mass q_e / sum_all q reaches p
//     (at least one, at most the selections left).
// q is the router's probability of each expert over all E (disabled experts included):
//   logit routers (router_score "logits"): softmax of the E logits. The ratio q_a / q_b =
//     exp(z_a - z_b) equals the ratio of the model's top-k softmax weights, so thresholds read
//     the same on either; with gate_use_softmax off (raw-logit weights) q still is the softmax;
//   softmax scorers: the scores themselves (softmax over E), whose ratios are those of the
//     renormalized top-k weights;
//   sigmoid scorers: the sigmoid scores (without the selection bias); top-p divides them by
//     their sum over E.
// The selections are taken in the order top-k chose them (the selection key's, bias included);
// q_max is the largest q among them. Weights (step 5) are then the recipe's on the experts kept.
#include <cstdint>
#include <vector>

#include "core/config.h"
#include "core/routing_policy.h"

namespace moe {

// True when the layer policy sets any dynamic-k rule.
bool HasDynamicK(const LayerPolicy& policy);

// q of every expert (see above) from the router logits z [E] and scores s [E] (s unused for
// logit routers).
void DynamicKScores(const ModelConfig& config, const float* z, const float* s,
                    std::vector<float>& q);

// Applies the layer's rules to `chosen` (the top-k selections, in selection order), in place.
void ApplyDynamicK(const LayerPolicy& policy, const std::vector<float>& q,
                   std::vector<int32_t>& chosen);

}  // namespace moe
