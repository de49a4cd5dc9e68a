#include "core/kv_cache.h"

#include <algorithm>

#include "core/tensor.h"

namespace moe {
namespace {

// Copies the first `kept` elements of each of `blocks` blocks from blocks of `old_block`
// elements into blocks of `new_block` elements; an empty vector (the other type's) stays empty.
template <typename T>
void Regrow(std::vector<T>& data, size_t blocks, size_t old_block, size_t new_block, size_t kept) {
  if (data.empty()) return;
  std::vector<T> grown(blocks * new_block);
  for (size_t i = 0; i < blocks; ++i)
    std::copy_n(data.data() + i * old_block, kept, grown.data() + i * new_block);
  data = std::move(grown);
}

}  // namespace

std::optional<KvCacheType> ParseKvCacheType(std::string_view name) {
  if (name == "f32") return KvCacheType::kF32;
  if (name == "bf16") return KvCacheType::kBF16;
  return std::nullopt;
}

const char* KvCacheTypeName(KvCacheType type) {
  return type == KvCacheType::kBF16 ? "bf16" : "f32";
}

KvCache::KvCache(const ModelConfig& c, int64_t batch_size, int64_t capacity, KvCacheType type)
    : batch_size_(batch_size),
      capacity_(capacity),
      layers_(c.num_hidden_layers),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim()),
      type_(type) {
  const size_t n = static_cast<size_t>(layers_) * batch_size * kv_heads_ * capacity * head_dim_;
  if (type_ == KvCacheType::kBF16) {
    keys_bf16_.resize(n);
    values_bf16_.resize(n);
  } else {
    keys_.resize(n);
    values_.resize(n);
  }
  key_mask_.resize(static_cast<size_t>(batch_size * capacity));
}

size_t KvCache::bytes() const {
  return (keys_.size() + values_.size()) * sizeof(float) +
         (keys_bf16_.size() + values_bf16_.size()) * sizeof(uint16_t);
}

void KvCache::Reserve(int64_t tokens) {
  if (tokens <= capacity_) return;
  const int64_t capacity = std::max(tokens, capacity_ + capacity_ / 2);
  const size_t blocks = static_cast<size_t>(layers_) * batch_size_ * kv_heads_;  // [L, B, nkv]
  const size_t old_block = static_cast<size_t>(capacity_ * head_dim_);
  const size_t new_block = static_cast<size_t>(capacity * head_dim_);
  const size_t kept = static_cast<size_t>(length_ * head_dim_);
  Regrow(keys_, blocks, old_block, new_block, kept);
  Regrow(values_, blocks, old_block, new_block, kept);
  Regrow(keys_bf16_, blocks, old_block, new_block, kept);
  Regrow(values_bf16_, blocks, old_block, new_block, kept);
  std::vector<uint8_t> key_mask(static_cast<size_t>(batch_size_ * capacity));
  for (int64_t b = 0; b < batch_size_; ++b)
    std::copy_n(key_mask_.data() + b * capacity_, length_, key_mask.data() + b * capacity);
  key_mask_ = std::move(key_mask);
  capacity_ = capacity;
}

size_t KvCache::Offset(int layer, int64_t b, int kv_head) const {
  return ((static_cast<size_t>(layer) * batch_size_ + b) * kv_heads_ + kv_head) * capacity_ *
         head_dim_;
}

void KvCache::Store(int layer, int64_t b, int kv_head, int64_t pos, const float* key,
                    const float* value) {
  const size_t at = Offset(layer, b, kv_head) + static_cast<size_t>(pos * head_dim_);
  if (type_ == KvCacheType::kF32) {
    std::copy_n(key, head_dim_, keys_.data() + at);
    std::copy_n(value, head_dim_, values_.data() + at);
    return;
  }
  for (int i = 0; i < head_dim_; ++i) {
    keys_bf16_[at + i] = F32ToBF16(key[i]);
    values_bf16_[at + i] = F32ToBF16(value[i]);
  }
}

const float* KvCache::Read(const std::vector<float>& f32, const std::vector<uint16_t>& bf16,
                           size_t offset, int64_t count, ScratchBuffer<float>& scratch) const {
  if (type_ == KvCacheType::kF32) return f32.data() + offset;
  const size_t n = static_cast<size_t>(count * head_dim_);
  float* widened = scratch.Get(n);  // [count, d]
  ToF32(DType::kBF16, bf16.data() + offset, widened, n);
  return widened;
}

const float* KvCache::Keys(int layer, int64_t b, int kv_head, int64_t count,
                           ScratchBuffer<float>& scratch) const {
  return Read(keys_, keys_bf16_, Offset(layer, b, kv_head), count, scratch);
}

const float* KvCache::Values(int layer, int64_t b, int kv_head, int64_t count,
                             ScratchBuffer<float>& scratch) const {
  return Read(values_, values_bf16_, Offset(layer, b, kv_head), count, scratch);
}

}  // namespace moe
