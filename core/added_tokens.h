#pragma once
// tokenizer.json's "added_tokens" found in a text before it is pre-tokenized, as Hugging Face's
// AddedVocabulary finds them: leftmost-longest, non-overlapping; a single_word token only where
// no word character touches it; lstrip/rstrip tokens take the whitespace beside them.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer_json.h"

namespace moe {

// A run of text to tokenize (id -1), or an added token found in the text.
struct TextSegment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  // `tokens` are those matched in one pass (the unnormalized ones, or the normalized ones with
  // their content already normalized).
  explicit AddedTokenMatcher(std::vector<AddedTokenSpec> tokens);

  bool empty() const { return tokens_.empty(); }
  // The segments of `text` (valid UTF-8), appended to `out` in order; they cover the text.
  void Split(std::string_view text, std::vector<TextSegment>& out) const;

 private:
  std::vector<AddedTokenSpec> tokens_;
  // By first byte: the tokens that start with it, longest first.
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

}  // namespace moe
