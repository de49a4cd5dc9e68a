#pragma once
// GPT-2's byte-level alphabet, which byte-level BPE (tokenizer.json "ByteLevel") writes tokens
// in: each of the 256 byte values stands as one printable Unicode character (printable Latin-1
// bytes as themselves, the others as U+0100 and up: a space is "Ġ", a newline "Ċ"), so that any
// byte string is a string of vocabulary characters.
#include <string>
#include <string_view>

namespace moe {

// The UTF-8 of the character standing for `byte`.
const std::string& ByteLevelChar(unsigned char byte);

// Each byte of `bytes` replaced by its character, appended to `out`.
void AppendByteLevel(std::string_view bytes, std::string& out);

// The bytes a token written in the alphabet stands for, appended to `out`; false (and `out`
// unchanged) when a character of the token is not in the alphabet.
bool AppendBytesOfByteLevel(std::string_view token, std::string& out);

}  // namespace moe
