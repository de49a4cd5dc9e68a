#include "core/generate.h"

#include <chrono>

#include "core/error.h"
#include "core/heads.h"

namespace moe {

GenerationResult Generate(const MoeModel& model, const std::vector<int32_t>& prompt,
                          const GenerationOptions& options,
                          const std::function<void(int32_t)>& on_token, bool keep_step_logits) {
  const ModelConfig& c = model.config();
  if (prompt.empty()) Fail("generate", "the prompt is empty: give at least one token");
  if (options.max_new_tokens < 0) Fail("generate", "max_new_tokens must be >= 0");
  const int64_t total = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  // Without RoPE scaling, generation stops when the sequence fills the context; with scaling it
  // has no limit and the cache holds the whole sequence (dynamic NTK past the trained length).
  const int64_t limit = c.max_sequence_length();
  if (static_cast<int64_t>(prompt.size()) > limit)
    Fail("generate", "the prompt has " + std::to_string(prompt.size()) +
                         " tokens, longer than the context length of " + std::to_string(limit));
  if (options.policy != nullptr) options.policy->Validate(c);
  KvCache cache(c, 1, std::min(total, limit), options.kv_cache);
  Sampler sampler(options.sampling);
  GenerationResult result;
  using Clock = std::chrono::steady_clock;

  auto start = Clock::now();
  std::vector<float> hidden = model.Forward(Batch::Single(prompt), &cache, options.policy);
  const int64_t h = c.hidden_size;
  std::vector<float> logits = LmLogits(model, hidden.data() + (prompt.size() - 1) * h, 1);
  result.prefill_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  start = Clock::now();
  for (int step = 0; step < options.max_new_tokens; ++step) {
    const int32_t next = sampler.Sample(logits.data(), c.vocab_size);
    if (keep_step_logits) result.step_logits.push_back(logits);
    result.tokens.push_back(next);
    if (on_token) on_token(next);
    if (options.stop_at_eos && next == c.eos_token_id) break;
    if (step + 1 == options.max_new_tokens || cache.length() >= limit) break;
    hidden = model.Forward(Batch::Single({next}, static_cast<int32_t>(cache.length())), &cache,
                           options.policy);
    logits = LmLogits(model, hidden.data(), 1);
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace moe
