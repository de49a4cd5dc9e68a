#pragma once
// Rotary position embedding in the rotate-half layout (dimension j pairs with j + d/2), with
// linear and dynamic-NTK scaling as upstream computes them (docs/llama-moe-spec.md §2.3).
#include <cstdint>
#include <vector>

#include "core/config.h"

namespace moe {

class Rope {
 public:
  // key_length = cached + new tokens of this call; dynamic NTK rescales theta when it exceeds
  // max_position_embeddings. The stored rotary_emb.inv_freq of checkpoints is never used.
  Rope(const ModelConfig& config, int64_t key_length);

  // Rotates x [rows, heads, head_dim] in place, row r at position positions[r].
  void Apply(float* x, int64_t rows, int heads, const int32_t* positions) const;

  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int head_dim_;
  float position_divisor_ = 1.0f;  // linear scaling
  std::vector<float> inv_freq_;    // [head_dim / 2]
};

}  // namespace moe
