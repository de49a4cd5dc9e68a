#pragma once
// The work a model's forward pass must do, counted from its weights and configuration, for
// stating measured throughput as a fraction of what the hardware can do: the bytes a decode step
// reads (against the read bandwidth) and the floating-point operations of a prefill (against
// the bf16 GEMM peak).
#include <cstdint>

#include "core/kv_cache.h"
#include "core/moe_model.h"

namespace moe::bench {

// Bytes one decode step must read at KV-cache position `mean_position`: every attention and
// router matrix, the num_selects experts a token uses (at the mean expert size) or a dense
// layer's MLP, the shared expert and its gate, the lm_head, one embedding row, and the KV cache
// up to that position (4 bytes an element in an fp32 cache, 2 in a bf16 one). Norm vectors and
// biases are left out (a few KiB).
double DecodeBytesPerToken(const MoeModel& model, double mean_position, KvCacheType kv_cache);

// FLOPs of one prefill of `tokens` positions with the lm_head over every position (what the
// benchmark's prefill_tok_s times).
double PrefillFlops(const ModelConfig& config, int64_t tokens);

}  // namespace moe::bench
