#pragma once
// A decode step (one new token of one sequence) with the worker threads in one parallel region
// for all its layers.
//
// The general forward pass (MoeModel::Layer) opens and closes a parallel region for every
// matrix product, four times a layer. When idle threads sleep (OMP_WAIT_POLICY=PASSIVE) each fork
// and join cost 43-62 µs on the project's machines, a fifth of a small model's step. Here the
// threads meet only at the barrier after each product they share (q/k/v; attention; o_proj; the
// experts' gate and up; their down), 14-25 µs each. The small work between two products (norms,
// router and expert choice, bias, RoPE, SiLU, the weighted sum, the residual) every thread does
// for itself on its own copy, with the same functions in the same order, so no thread waits while
// another does it alone. The result is bit-identical to the general path.
#include <cstdint>
#include <vector>

#include "core/batch.h"
#include "core/config.h"
#include "core/hooks.h"
#include "core/kv_cache.h"
#include "core/model_weights.h"
#include "core/routing_policy.h"

namespace moe {

// What the step needs of a model's weights, worked out once when the model is made (MoeModel
// keeps it): whether every matrix of the layers is in one 16-bit dtype (their products stream
// through the dot kernels; f32 products go to OpenBLAS, which must not be called from inside a
// parallel region), and the largest shared expert buffers a layer can ask for (every expert at
// once, as a policy may raise k, plus the shared expert).
struct OneRegionDecodePlan {
  bool weights_stream = false;
  int64_t intermediate = 0;  // floats of the shared gate and up buffers
  int64_t outputs = 0;       // rows of H in the shared expert outputs
};
OneRegionDecodePlan PlanOneRegionDecode(const ModelConfig& config, const ModelWeights& weights);

// Whether a forward pass over `batch` runs this way: one token of one sequence, more than one
// thread, no hooks registered (they see every event from one thread, in order), a policy without
// forced routes or a route table (those may name an expert twice), and weights that stream.
bool DecodesInOneRegion(const OneRegionDecodePlan& plan, const Batch& batch,
                        const HookRegistry& hooks, const RoutingPolicy* policy);

// Layers [first, last) (first < last) on hidden [1, H], the residual stream of the batch's one
// token, appending the token's keys and values to `cache` (the caller advances it).
void DecodeLayersInOneRegion(const ModelConfig& config, const ModelWeights& weights,
                             const OneRegionDecodePlan& plan, int first, int last,
                             const Batch& batch, const TokenSpan& span, const RoutingPolicy* policy,
                             KvCache& cache, std::vector<float>& hidden);

}  // namespace moe
