#include "core/kv_cache.h"

namespace moe {

KvCache::KvCache(const LlamaMoeConfig& c, int64_t batch_size, int64_t capacity)
    : batch_size_(batch_size),
      capacity_(capacity),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim()) {
  const size_t n =
      static_cast<size_t>(c.num_hidden_layers) * batch_size * kv_heads_ * capacity * head_dim_;
  keys_.resize(n);
  values_.resize(n);
  key_mask_.resize(static_cast<size_t>(batch_size * capacity));
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
