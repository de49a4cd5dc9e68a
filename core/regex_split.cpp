#include "core/regex_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "core/error.h"
#include "core/utf8.h"

namespace moe {
namespace {

pcre2_code* Code(void* code) {
  return static_cast<pcre2_code*>(code);
}

std::string PcreMessage(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

struct MatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

RegexSplit::RegexSplit(const std::string& pattern, const std::string& where,
                       const std::string& field)
    : where_(where) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code_ == nullptr)
    Fail(where, field + " is not a regex PCRE2 reads: " + PcreMessage(error) + " at offset " +
                    std::to_string(offset));
  // JIT is a speed-up only: where it is unavailable the interpreter gives the same matches.
  jit_ = pcre2_jit_compile(Code(code_), PCRE2_JIT_COMPLETE) == 0;
}

RegexSplit::~RegexSplit() {
  if (code_ != nullptr) pcre2_code_free(Code(code_));
}

RegexSplit::RegexSplit(RegexSplit&& other) noexcept
    : code_(other.code_), jit_(other.jit_), where_(std::move(other.where_)) {
  other.code_ = nullptr;
}

void RegexSplit::Split(std::string_view text, std::vector<std::string_view>& out) const {
  const std::unique_ptr<pcre2_match_data, MatchDataFree> match(
      pcre2_match_data_create_from_pattern(Code(code_), nullptr));
  if (!match) Fail(where_, "out of memory for a regex match");
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t piece_start = 0, at = 0;
  while (at < text.size()) {
    // The text is valid UTF-8 (made so before pre-tokenization): no check needed.
    uint32_t options = PCRE2_NO_UTF_CHECK | (jit_ ? 0 : PCRE2_NO_JIT);
    int rc = pcre2_match(Code(code_), subject, text.size(), at, options, match.get(), nullptr);
    // The JIT's fixed stack can run out on long runs; the interpreter's stack grows on the heap.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(Code(code_), subject, text.size(), at, options | PCRE2_NO_JIT, match.get(),
                       nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) Fail(where_, "regex match failed: " + PcreMessage(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    const size_t start = ovector[0], end = ovector[1];
    if (end == start) {  // an empty match splits nothing; look again one character on
      if (start >= text.size()) break;
      at = start + Utf8CharLength(static_cast<unsigned char>(text[start]));
      continue;
    }
    if (start > piece_start) out.push_back(text.substr(piece_start, start - piece_start));
    out.push_back(text.substr(start, end - start));
    piece_start = at = end;
  }
  if (piece_start < text.size()) out.push_back(text.substr(piece_start));
}

}  // namespace moe
