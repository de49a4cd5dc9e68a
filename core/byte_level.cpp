#include "core/byte_level.h"

#include <array>
#include <unordered_map>

#include "core/utf8.h"

namespace moe {
namespace {

struct Alphabet {
  std::array<std::string, 256> char_of_byte;
  std::unordered_map<char32_t, unsigned char> byte_of_char;

  // GPT-2's bytes_to_unicode(): the printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for
  // themselves; the other 68 take U+0100, U+0101, ... in byte order.
  Alphabet() {
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t c = printable ? static_cast<char32_t>(b) : next++;
      char_of_byte[b] = Utf8Encode(c);
      byte_of_char[c] = static_cast<unsigned char>(b);
    }
  }
};

const Alphabet& TheAlphabet() {
  static const Alphabet alphabet;
  return alphabet;
}

}  // namespace

const std::string& ByteLevelChar(unsigned char byte) {
  return TheAlphabet().char_of_byte[byte];
}

void AppendByteLevel(std::string_view bytes, std::string& out) {
  const Alphabet& a = TheAlphabet();
  for (char b : bytes) out += a.char_of_byte[static_cast<unsigned char>(b)];
}

bool AppendBytesOfByteLevel(std::string_view token, std::string& out) {
  const Alphabet& a = TheAlphabet();
  if (!IsValidUtf8(token)) return false;
  std::string bytes;
  for (size_t at = 0; at < token.size();
       at += Utf8CharLength(static_cast<unsigned char>(token[at]))) {
    const auto it = a.byte_of_char.find(Utf8CodePointAt(token, at));
    if (it == a.byte_of_char.end()) return false;
    bytes += static_cast<char>(it->second);
  }
  out += bytes;
  return true;
}

}  // namespace moe
