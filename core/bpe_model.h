#pragma once
// tokenizer.json's model of type "BPE" over the byte-level alphabet: the vocabulary, the merges
// by rank, and the encoding of one pre-tokenized word, with a cache of words already seen.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer_json.h"

namespace moe {

class BpeModel {
 public:
  // Errors (a merge naming a token outside the vocabulary, an unk_token that is not in it) name
  // `where` and the field.
  BpeModel(const BpeTokenizerSpec& spec, const std::string& where);

  // The ids of one word given as bytes, appended to `out`. Bytes whose character is not in the
  // vocabulary become unk_token, or are dropped when there is none (as Hugging Face does).
  void EncodeWord(std::string_view bytes, std::vector<int32_t>& out) const;

  // The id of a vocabulary entry, or -1.
  int32_t IdOf(const std::string& token) const;

 private:
  struct Merge {
    int32_t rank = 0;
    int32_t merged_id = 0;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  // The ids of a word not in the cache.
  std::vector<int32_t> Merged(std::string_view bytes) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_id_{};  // the id of each byte's character, -1 when absent
  int32_t unk_id_ = -1;
  bool ignore_merges_ = false;

  // Words of up to kCachedWordBytes, cleared when it holds kCacheWords: corpora repeat words.
  static constexpr size_t kCachedWordBytes = 256;
  static constexpr size_t kCacheWords = size_t{1} << 17;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace moe
