#pragma once
// tokenizer.json's pre-tokenizer for byte-level BPE: the text cut into words by the Split
// regexes, then by ByteLevel (a prefix space if asked, GPT-2's regex if use_regex). Words are
// handed over as bytes; the BPE model maps them to the byte-level alphabet.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/regex_split.h"
#include "core/tokenizer_json.h"

namespace moe {

class PreTokenizer {
 public:
  PreTokenizer(const BpeTokenizerSpec& spec, const std::string& where);

  // Calls `word` with each word of `text` (valid UTF-8, normalized), in order.
  void ForEachWord(std::string_view text, const std::function<void(std::string_view)>& word) const;

 private:
  // Steps [step, end) on one piece.
  void Run(size_t step, std::string_view piece,
           const std::function<void(std::string_view)>& word) const;

  std::vector<RegexSplit> splits_;  // the Split steps, then ByteLevel's regex if use_regex
  size_t byte_level_step_ = 0;      // the index in splits_ where ByteLevel starts
  bool add_prefix_space_ = false;
};

}  // namespace moe
