// JSONL corpora (analysis/corpus): any file must give documents or moe::Error, text documents
// tokenized with the tiny test model's tokenizer.
#include <cstddef>
#include <cstdint>

#include "analysis/corpus/corpus.h"
#include "core/error.h"
#include "core/sentencepiece_tokenizer.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const moe::SentencePieceTokenizer tokenizer(
      moe::fuzz::FixturePath("tiny_moe/tokenizer.model"));
  static moe::fuzz::InputFile input(".jsonl");
  const auto& path = input.Write(data, size);
  moe::CorpusOptions options;
  options.default_domain = "web";
  // The options that cut documents short, from the input's size so both sides are covered.
  if (size % 2 == 1) {
    options.max_documents_per_domain = 2;
    options.max_tokens_per_document = 3;
  }
  try {
    moe::CorpusReader reader(&tokenizer, tokenizer.vocab_size(), options);
    reader.Read(path);
    const moe::Corpus corpus = reader.Finish();
    moe::fuzz::Keep(corpus.tokens() + static_cast<int64_t>(corpus.Fingerprint().size()));
  } catch (const moe::Error&) {
  }
  return 0;
}
