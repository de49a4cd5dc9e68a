#pragma once
// Keys (after RoPE) and values of every layer for the tokens seen so far, plus which of those
// tokens were padding, so later calls attend to the same keys upstream's cache would hold.
//
// The element type is chosen when the cache is made. fp32 keeps the keys and values exactly as
// computed. bf16 rounds them to nearest even when they are written, halving the bytes a decode
// step reads at long contexts; every attention (prefill and decode) then reads the rounded keys
// and values back from the cache, while queries, scores, softmax and the weighted sum stay fp32.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/scratch_buffer.h"

namespace moe {

enum class KvCacheType { kF32, kBF16 };

// "f32" or "bf16" (the spelling of --kv-cache); nullopt for anything else.
std::optional<KvCacheType> ParseKvCacheType(std::string_view name);
const char* KvCacheTypeName(KvCacheType type);

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t batch_size, int64_t capacity,
          KvCacheType type = KvCacheType::kF32);

  int64_t length() const { return length_; }  // P: tokens already cached per row
  int64_t capacity() const { return capacity_; }
  int64_t batch_size() const { return batch_size_; }
  KvCacheType type() const { return type_; }
  // Bytes held by keys and values: 2 · L · B · nkv · capacity · d · (4 for fp32, 2 for bf16).
  size_t bytes() const;

  // Writes the key and value ([d] each) of one token of one layer, batch row and KV head at
  // cache index `pos` (< capacity), rounded to bf16 in a bf16 cache.
  void Store(int layer, int64_t b, int kv_head, int64_t pos, const float* key, const float* value);

  // The first `count` keys or values ([count, d]) of one layer, batch row and KV head as fp32:
  // the cache's own memory in an fp32 cache (no copy), widened into `scratch` in a bf16 one.
  const float* Keys(int layer, int64_t b, int kv_head, int64_t count,
                    ScratchBuffer<float>& scratch) const;
  const float* Values(int layer, int64_t b, int kv_head, int64_t count,
                      ScratchBuffer<float>& scratch) const;

  // The bf16 bit patterns ([capacity, d]) of one layer, batch row and KV head of a bf16 cache,
  // for kernels that read them without widening (a decode step's attention).
  const uint16_t* keys_bf16(int layer, int64_t b, int kv_head) const {
    return keys_bf16_.data() + Offset(layer, b, kv_head);
  }
  const uint16_t* values_bf16(int layer, int64_t b, int kv_head) const {
    return values_bf16_.data() + Offset(layer, b, kv_head);
  }

  // [capacity]: 1 where the cached token was real.
  uint8_t* key_mask(int64_t b) { return key_mask_.data() + b * capacity_; }
  const uint8_t* key_mask(int64_t b) const { return key_mask_.data() + b * capacity_; }

  // Makes room for `tokens` per row, keeping what is cached. The cache grows to at least 1.5x
  // its capacity, so a token-by-token decode past it reallocates rarely. Call it before a
  // forward pass, never during one (pointers from Keys()/Values() move).
  void Reserve(int64_t tokens);

  // Makes the tokens of the last call part of the cache (after every layer has written them).
  void Advance(int64_t tokens) { length_ += tokens; }
  void Clear() { length_ = 0; }

 private:
  size_t Offset(int layer, int64_t b, int kv_head) const;
  const float* Read(const std::vector<float>& f32, const std::vector<uint16_t>& bf16, size_t offset,
                    int64_t count, ScratchBuffer<float>& scratch) const;
  int64_t batch_size_, capacity_, length_ = 0;
  int layers_, kv_heads_, head_dim_;
  KvCacheType type_;
  // [L, B, nkv, capacity, d] each; only the pair of the cache's type is allocated.
  std::vector<float> keys_, values_;
  std::vector<uint16_t> keys_bf16_, values_bf16_;  // bf16 bit patterns
  std::vector<uint8_t> key_mask_;                  // [B, capacity]
};

}  // namespace moe
