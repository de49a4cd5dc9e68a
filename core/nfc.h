#pragma once
// Unicode Normalization Form C (tokenizer.json's "NFC" normalizer), through ICU.
#include <string>
#include <string_view>

namespace moe {

// `text` (valid UTF-8) in NFC.
std::string NfcNormalized(std::string_view text);

}  // namespace moe
