// The tokenizer model loader (core/tokenizer over libsentencepiece): any bytes must load as a
// model or fail with moe::Error; a model that loads must encode and decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/sentencepiece_tokenizer.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moe::fuzz::InputFile input(".model");
  try {
    const moe::SentencePieceTokenizer tokenizer(input.Write(data, size));
    const std::vector<int32_t> ids = tokenizer.Encode("Hello world, ünïcode 123", true, true);
    const std::string text = tokenizer.Decode(ids);
    moe::fuzz::TouchBytes(text.data(), text.size());
    for (int32_t id = 0; id < tokenizer.vocab_size() && id < 64; ++id) tokenizer.Piece(id);
  } catch (const moe::Error&) {
  }
  return 0;
}
