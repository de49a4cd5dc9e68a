#include "core/rope.h"

#include <cmath>

namespace moe {

Rope::Rope(const ModelConfig& c, int64_t key_length) : head_dim_(c.head_dim()) {
  double theta = c.rope_theta;
  if (c.rope_scaling == RopeScaling::kLinear) position_divisor_ = c.rope_scaling_factor;
  if (c.rope_scaling == RopeScaling::kDynamic && key_length > c.max_position_embeddings) {
    const double f = c.rope_scaling_factor;
    theta *= std::pow(f * static_cast<double>(key_length) / c.max_position_embeddings - (f - 1.0),
                      static_cast<double>(head_dim_) / (head_dim_ - 2));
  }
  // Same fp32 arithmetic as upstream: 1 / theta ** (arange(0, d, 2).float() / d).
  const float base = static_cast<float>(theta);
  for (int i = 0; i < head_dim_ / 2; ++i)
    inv_freq_.push_back(1.0f / std::pow(base, static_cast<float>(2 * i) / head_dim_));
}

void Rope::Apply(float* x, int64_t rows, int heads, const int32_t* positions) const {
  const int half = head_dim_ / 2;
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float t = static_cast<float>(positions[r]) / position_divisor_;
    std::vector<float> cos(half), sin(half);
    for (int i = 0; i < half; ++i) {
      const float angle = t * inv_freq_[i];
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    for (int h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim_;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos[i] - b * sin[i];
        v[i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

}  // namespace moe
