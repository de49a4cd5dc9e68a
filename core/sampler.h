#pragma once
// Picks the next token from logits: greedy, or temperature with top-k and top-p, seeded.
#include <cstdint>
#include <random>

namespace moe {

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0 = no limit
  float top_p = 1.0f;        // nucleus mass
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);  // throws Error for out-of-range options
  int32_t Sample(const float* logits, int64_t vocab);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

int32_t Argmax(const float* logits, int64_t n);

}  // namespace moe
