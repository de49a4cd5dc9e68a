#include "core/added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "core/utf8.h"

namespace moe {
namespace {

// Rust's char::is_alphanumeric or '_', what Hugging Face takes for a word character.
bool IsWordChar(char32_t c) {
  return c == '_' || u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) ||
         (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

// Rust's char::is_whitespace: the White_Space property.
bool IsSpace(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

// The start of the character that ends text[0, end).
size_t PreviousCharStart(std::string_view text, size_t end) {
  size_t at = end - 1;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  return at;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedTokenSpec> tokens)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i)
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content.front())].push_back(i);
  for (auto& list : by_first_byte_)
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
}

void AddedTokenMatcher::Split(std::string_view text, std::vector<TextSegment>& out) const {
  size_t piece_start = 0;  // where the text not yet given out starts
  for (size_t at = 0; at < text.size();) {
    const AddedTokenSpec* found = nullptr;
    for (size_t i : by_first_byte_[static_cast<unsigned char>(text[at])]) {
      if (text.compare(at, tokens_[i].content.size(), tokens_[i].content) == 0) {
        found = &tokens_[i];
        break;
      }
    }
    if (found == nullptr) {
      ++at;
      continue;
    }
    size_t start = at, stop = at + found->content.size();
    at = stop;  // a match passed over (single_word) still takes its text from the search
    if (found->single_word) {
      const bool word_before =
          start > 0 && IsWordChar(Utf8CodePointAt(text, PreviousCharStart(text, start)));
      const bool word_after = stop < text.size() && IsWordChar(Utf8CodePointAt(text, stop));
      if (word_before || word_after) continue;
    }
    if (found->lstrip)
      while (start > piece_start && IsSpace(Utf8CodePointAt(text, PreviousCharStart(text, start))))
        start = PreviousCharStart(text, start);
    if (found->rstrip)
      while (stop < text.size() && IsSpace(Utf8CodePointAt(text, stop)))
        stop += Utf8CharLength(static_cast<unsigned char>(text[stop]));
    if (start > piece_start) out.push_back({text.substr(piece_start, start - piece_start), -1});
    out.push_back({text.substr(start, stop - start), found->id});
    piece_start = at = stop;
  }
  if (piece_start < text.size()) out.push_back({text.substr(piece_start), -1});
}

}  // namespace moe
