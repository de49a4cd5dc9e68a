#include "core/kv_cache.h"

#include <algorithm>

namespace moe {

KvCache::KvCache(const ModelConfig& c, int64_t batch_size, int64_t capacity)
    : batch_size_(batch_size),
      capacity_(capacity),
      layers_(c.num_hidden_layers),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim()) {
  const size_t n = static_cast<size_t>(layers_) * batch_size * kv_heads_ * capacity * head_dim_;
  keys_.resize(n);
  values_.resize(n);
  key_mask_.resize(static_cast<size_t>(batch_size * capacity));
}

void KvCache::Reserve(int64_t tokens) {
  if (tokens <= capacity_) return;
  const int64_t capacity = std::max(tokens, capacity_ + capacity_ / 2);
  const size_t blocks = static_cast<size_t>(layers_) * batch_size_ * kv_heads_;  // [L, B, nkv]
  const size_t old_block = static_cast<size_t>(capacity_ * head_dim_);
  const size_t new_block = static_cast<size_t>(capacity * head_dim_);
  const size_t kept = static_cast<size_t>(length_ * head_dim_);
  std::vector<float> keys(blocks * new_block), values(blocks * new_block);
  for (size_t i = 0; i < blocks; ++i) {
    std::copy_n(keys_.data() + i * old_block, kept, keys.data() + i * new_block);
    std::copy_n(values_.data() + i * old_block, kept, values.data() + i * new_block);
  }
  std::vector<uint8_t> key_mask(static_cast<size_t>(batch_size_ * capacity));
  for (int64_t b = 0; b < batch_size_; ++b)
    std::copy_n(key_mask_.data() + b * capacity_, length_, key_mask.data() + b * capacity);
  keys_ = std::move(keys);
  values_ = std::move(values);
  key_mask_ = std::move(key_mask);
  capacity_ = capacity;
}

size_t KvCache::Offset(int layer, int64_t b, int kv_head) const {
  return ((static_cast<size_t>(layer) * batch_size_ + b) * kv_heads_ + kv_head) * capacity_ *
         head_dim_;
}

float* KvCache::keys(int layer, int64_t b, int kv_head) {
  return keys_.data() + Offset(layer, b, kv_head);
}

float* KvCache::values(int layer, int64_t b, int kv_head) {
  return values_.data() + Offset(layer, b, kv_head);
}

}  // namespace moe
