#pragma once
// Autoregressive generation through the KV cache: one prefill of the prompt, then one token
// per step.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/kv_cache.h"
#include "core/moe_model.h"
#include "core/sampler.h"

namespace moe {

struct GenerationOptions {
  int max_new_tokens = 32;
  SamplingOptions sampling;
  bool stop_at_eos = true;
  const RoutingPolicy* policy = nullptr;     // interventions applied at every step
  KvCacheType kv_cache = KvCacheType::kF32;  // element type of the keys and values cached
};

struct GenerationResult {
  std::vector<int32_t> tokens;                  // the new tokens (EOS included if produced)
  std::vector<std::vector<float>> step_logits;  // logits each token was drawn from (if asked)
  double prefill_seconds = 0, decode_seconds = 0;
};

// on_token is called with each new token as soon as it is chosen (for streaming).
GenerationResult Generate(const MoeModel& model, const std::vector<int32_t>& prompt,
                          const GenerationOptions& options,
                          const std::function<void(int32_t)>& on_token = {},
                          bool keep_step_logits = false);

}  // namespace moe
