#pragma once
// Keys (after RoPE) and values of every layer for the tokens seen so far, plus which of those
// tokens were padding, so later calls attend to the same keys upstream's cache would hold.
#include <cstdint>
#include <vector>

#include "core/config.h"

namespace moe {

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t batch_size, int64_t capacity);

  int64_t length() const { return length_; }  // P: tokens already cached per row
  int64_t capacity() const { return capacity_; }
  int64_t batch_size() const { return batch_size_; }

  // [capacity, head_dim] block of one layer, batch row and KV head.
  float* keys(int layer, int64_t b, int kv_head);
  float* values(int layer, int64_t b, int kv_head);
  // [capacity]: 1 where the cached token was real.
  uint8_t* key_mask(int64_t b) { return key_mask_.data() + b * capacity_; }

  // Makes room for `tokens` per row, keeping what is cached. The cache grows to at least 1.5x
  // its capacity, so a token-by-token decode past it reallocates rarely. Call it before a
  // forward pass, never during one (pointers from keys()/values() move).
  void Reserve(int64_t tokens);

  // Makes the tokens of the last call part of the cache (after every layer has written them).
  void Advance(int64_t tokens) { length_ += tokens; }
  void Clear() { length_ = 0; }

 private:
  size_t Offset(int layer, int64_t b, int kv_head) const;
  int64_t batch_size_, capacity_, length_ = 0;
  int layers_, kv_heads_, head_dim_;
  std::vector<float> keys_, values_;  // [L, B, nkv, capacity, d]
  std::vector<uint8_t> key_mask_;     // [B, capacity]
};

}  // namespace moe
