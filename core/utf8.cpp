#include "core/utf8.h"

namespace moe {
namespace {

// How many bytes of a valid sequence start at `at` (0 when none does), following the table of
// well-formed byte sequences in the Unicode standard (Table 3-7). `*valid_prefix` receives how
// many bytes form a maximal prefix of a valid sequence (at least 1): what one U+FFFD replaces.
size_t ValidSequenceAt(std::string_view text, size_t at, size_t* valid_prefix) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  *valid_prefix = 1;
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) lo = 0x90;  // no overlong forms
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (at + k >= text.size()) return 0;
    const unsigned char b = byte(at + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    *valid_prefix = k + 1;
  }
  return length;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    size_t prefix = 0;
    const size_t length = ValidSequenceAt(text, at, &prefix);
    if (length > 0) {
      out.append(text.substr(at, length));
      at += length;
    } else {
      out.append(kReplacementChar);
      at += prefix;
    }
  }
  return out;
}

bool IsValidUtf8(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    if (static_cast<unsigned char>(text[at]) < 0x80) {
      ++at;
      continue;
    }
    size_t prefix = 0;
    const size_t length = ValidSequenceAt(text, at, &prefix);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

char32_t Utf8CodePointAt(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(text[i]));
  };
  const char32_t lead = byte(at);
  switch (Utf8CharLength(static_cast<unsigned char>(lead))) {
    case 1:
      return lead;
    case 2:
      return ((lead & 0x1F) << 6) | (byte(at + 1) & 0x3F);
    case 3:
      return ((lead & 0x0F) << 12) | ((byte(at + 1) & 0x3F) << 6) | (byte(at + 2) & 0x3F);
    default:
      return ((lead & 0x07) << 18) | ((byte(at + 1) & 0x3F) << 12) | ((byte(at + 2) & 0x3F) << 6) |
             (byte(at + 3) & 0x3F);
  }
}

std::string Utf8Encode(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

}  // namespace moe
