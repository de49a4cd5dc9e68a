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

// The steps of SelfAttention, for the decode step that runs them inside its own parallel region
// (core/decode_step.h).
//
// q [T, nh, d], k and v [T, nkv, d] as projected: adds their biases, normalizes and clips them
// where the family does, and rotates q and k to their positions.
void PrepareQueriesAndKeys(const ModelConfig& config, const LayerWeights& w, int64_t T,
                           const Rope& rope, const int32_t* positions, float* q, float* k,
                           float* v);
// Query head h of batch row b: its S queries in q [B * S, nh, d] against the keys cached before
// this call and this call's own (stored already), into the same rows and head of attn. `keys`
// and `values` ([P + S, d] fp32) are its KV head's, widened already by the caller, or null to read
// them from the cache (a bf16 cache's single query reads the bf16 rows directly).
void AttendHead(const ModelConfig& config, int layer, const KvCache& cache, int64_t S,
                const float* q, int64_t b, int h, float* attn, const float* keys = nullptr,
                const float* values = nullptr);

}  // namespace moe
