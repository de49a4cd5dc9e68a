#include "core/pre_tokenizer.h"

namespace moe {

PreTokenizer::PreTokenizer(const BpeTokenizerSpec& spec, const std::string& where)
    : add_prefix_space_(spec.add_prefix_space) {
  for (size_t i = 0; i < spec.split_patterns.size(); ++i)
    splits_.emplace_back(spec.split_patterns[i], where,
                         "pre_tokenizer Split " + std::to_string(i) + " pattern.Regex");
  byte_level_step_ = splits_.size();
  if (spec.byte_level_regex) splits_.emplace_back(kGpt2SplitPattern, where, "ByteLevel's regex");
}

void PreTokenizer::ForEachWord(std::string_view text,
                               const std::function<void(std::string_view)>& word) const {
  Run(0, text, word);
}

void PreTokenizer::Run(size_t step, std::string_view piece,
                       const std::function<void(std::string_view)>& word) const {
  if (piece.empty()) return;
  if (step == byte_level_step_ && add_prefix_space_ && piece.front() != ' ') {
    // As Hugging Face's ByteLevel does to each piece it is given: the piece now starts with a
    // space, so this step runs on it without another.
    // Built by appending: `" " + s` trips a false -Wrestrict warning in GCC 12 at -O3.
    std::string prefixed = " ";
    prefixed.append(piece);
    Run(step, prefixed, word);
    return;
  }
  if (step >= splits_.size()) {
    word(piece);
    return;
  }
  std::vector<std::string_view> pieces;
  splits_[step].Split(piece, pieces);
  for (std::string_view p : pieces) Run(step + 1, p, word);
}

}  // namespace moe
