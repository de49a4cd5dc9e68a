#pragma once
// Grouped-query self-attention with RoPE, causal + padding mask and the KV cache
// (docs/llama-moe-spec.md §2.4-2.5).
#include "core/batch.h"
#include "core/kv_cache.h"
#include "core/model_weights.h"
#include "core/rope.h"

namespace moe {

// x: [T, H] normed input of layer `layer`; out: [T, H] attention output after o_proj.
// Appends this call's keys and values to `cache` at positions cache.length() onward (the caller
// advances the cache once every layer has run).
void SelfAttention(const ModelConfig& config, const LayerWeights& w, int layer, const float* x,
                   const Batch& batch, const Rope& rope, KvCache& cache, float* out);

}  // namespace moe
