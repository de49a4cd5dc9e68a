#pragma once
// A tokenizer.json "Split" with behavior "Isolated" through PCRE2: each match of the pattern is
// a piece, and so is each run of text between matches.
#include <string>
#include <string_view>
#include <vector>

namespace moe {

class RegexSplit {
 public:
  // `pattern` in the Oniguruma/Rust regex syntax tokenizer.json files use, which PCRE2 reads the
  // same way for the patterns of these files (\p{L}, \p{N}, \s, (?!...), (?i:...)); compiled
  // for UTF-8 with Unicode classes (\s, \w by Unicode properties). Errors name `where` and `field`.
  RegexSplit(const std::string& pattern, const std::string& where, const std::string& field);
  ~RegexSplit();
  RegexSplit(const RegexSplit&) = delete;
  RegexSplit& operator=(const RegexSplit&) = delete;
  RegexSplit(RegexSplit&& other) noexcept;

  // The pieces of `text` (valid UTF-8), in order, appended to `out`; they cover the text.
  void Split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8, kept out of the header
  bool jit_ = false;
  std::string where_;
};

}  // namespace moe
