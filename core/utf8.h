#pragma once
// UTF-8 as the tokenizers read it: text made valid by one rule, and characters stepped through.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe {

// U+FFFD REPLACEMENT CHARACTER.
inline constexpr std::string_view kReplacementChar = "\xef\xbf\xbd";

// `text` with each invalid byte sequence replaced by U+FFFD, as Python's
// bytes.decode("utf-8", errors="replace") does: a maximal prefix of a valid sequence that is cut
// short (and each byte that cannot start one) becomes one U+FFFD. Overlong forms, surrogates
// (U+D800..U+DFFF) and code points past U+10FFFF are invalid. Valid text is returned unchanged.
std::string ValidUtf8(std::string_view text);

// Whether `text` is valid UTF-8 (ValidUtf8 would leave it unchanged).
bool IsValidUtf8(std::string_view text);

// The length in bytes of the character that starts with `lead` in valid UTF-8.
inline size_t Utf8CharLength(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// The code point of the character at `at` of valid UTF-8 text.
char32_t Utf8CodePointAt(std::string_view text, size_t at);

// UTF-8 of a code point.
std::string Utf8Encode(char32_t code_point);

}  // namespace moe
