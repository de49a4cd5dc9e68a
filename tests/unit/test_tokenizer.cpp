// SentencePiece through libsentencepiece with LLaMA's BOS/EOS handling.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sentencepiece_tokenizer.h"
#include "test_paths.h"

using namespace moe;

TEST_CASE("the LLaMA-2 tokenizer reproduces the original's ids", "[tokenizer][golden]") {
  const auto dir = GoldenDir() / "llama2-tokenizer";
  const SentencePieceTokenizer tok(dir / "tokenizer.model");
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  std::ifstream in(dir / "cases.json");
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const std::string text = j.at("text").get<std::string>();
    INFO("text: " << text);
    CHECK(tok.Encode(text) == j.at("ids").get<std::vector<int32_t>>());
    ++cases;
  }
  CHECK(cases == 12);
}

TEST_CASE("encode and decode round-trip on the bundled tokenizer", "[tokenizer]") {
  const SentencePieceTokenizer tok(std::filesystem::path(MOESCOPE_SOURCE_DIR) /
                                   "tests/fixtures/tiny_moe/tokenizer.model");
  for (const std::string text : {"Permission is hereby granted, free of charge.",
                                 "tabs\tand\nnewlines", "Übergrößen 镇 🦙"}) {
    const std::vector<int32_t> ids = tok.Encode(text, /*add_bos=*/true, /*add_eos=*/true);
    CHECK(ids.front() == 1);
    CHECK(ids.back() == 2);
    CHECK(tok.Decode(ids) == text);
  }
  CHECK(tok.Encode("x", false).front() != 1);
  CHECK_THROWS_AS(tok.Decode({100000}), Error);
}

TEST_CASE("a file that is not a SentencePiece model", "[tokenizer][bad-input]") {
  const auto dir = TempDir("tokenizer");
  std::ofstream(dir / "tokenizer.model") << "not a model";
  CHECK_THROWS_WITH(SentencePieceTokenizer(dir / "tokenizer.model"),
                    Catch::Contains("tokenizer.model") && Catch::Contains("not a SentencePiece"));
  CHECK_THROWS_WITH(SentencePieceTokenizer(dir / "absent.model"),
                    Catch::Contains("does not exist"));
}

namespace {

std::vector<std::string> GoldenTexts() {
  std::ifstream in(GoldenDir() / "llama2-tokenizer" / "cases.json");
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line))
    texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  return texts;
}

// EncodePrefix against Encode on `text`: every piece size (1 splits at every eligible space),
// with and without a cap.
void CheckPiecewiseEqualsWhole(const Tokenizer& tok, const std::string& text) {
  const std::vector<int32_t> whole = tok.Encode(text);
  for (size_t piece_bytes :
       {size_t{1}, size_t{2}, size_t{5}, size_t{16}, size_t{200}, Tokenizer::kPieceBytes}) {
    INFO("piece_bytes " << piece_bytes << ", text " << text.substr(0, 80));
    CHECK(tok.EncodePrefix(text, true, 0, piece_bytes) == whole);
    for (size_t cap : {size_t{1}, size_t{2}, size_t{7}, size_t{100}}) {
      const size_t n = std::min(cap, whole.size());
      CHECK(tok.EncodePrefix(text, true, cap, piece_bytes) ==
            std::vector<int32_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
}

}  // namespace

TEST_CASE("encoding in pieces gives the ids of encoding whole", "[tokenizer][golden]") {
  const std::vector<std::string> texts = GoldenTexts();
  REQUIRE(texts.size() == 12);
  std::string joined;
  for (const std::string& t : texts) joined += (joined.empty() ? "" : " ") + t;
  for (const auto& model :
       {GoldenDir() / "llama2-tokenizer" / "tokenizer.model",
        std::filesystem::path(MOESCOPE_SOURCE_DIR) / "tests/fixtures/tiny_moe/tokenizer.model"}) {
    const SentencePieceTokenizer tok(model);
    INFO(model.string());
    // Both vocabularies allow splitting at spaces; the check is what makes piecewise exact.
    CHECK(tok.splits_at_spaces());
    for (const std::string& t : texts) CheckPiecewiseEqualsWhole(tok, t);
    CheckPiecewiseEqualsWhole(tok, joined);
    CheckPiecewiseEqualsWhole(tok, joined + " " + joined + "  double  spaces\tand\ttabs x");
    CHECK(tok.EncodePrefix("", true, 5) == tok.Encode(""));
    CHECK(tok.EncodePrefix("x y", false, 0, 1) == tok.Encode("x y", false));
  }
}

TEST_CASE("a long text is encoded only as far as the cap needs", "[tokenizer][bad-input]") {
  const SentencePieceTokenizer tok(std::filesystem::path(MOESCOPE_SOURCE_DIR) /
                                   "tests/fixtures/tiny_moe/tokenizer.model");
  // 4 MiB of words: with a cap of 100 ids only the first piece (about 64 KiB) is encoded, so
  // work and memory follow the cap, not the line.
  std::string text;
  while (text.size() < (size_t{4} << 20)) text += "free software foundation ";
  size_t encoded = 0;
  const std::vector<int32_t> ids =
      tok.EncodePrefix(text, true, 100, Tokenizer::kPieceBytes, &encoded);
  CHECK(ids.size() == 100);
  CHECK(encoded <= Tokenizer::kPieceBytes + 64);
  const std::vector<int32_t> head = tok.Encode(text.substr(0, 4096));
  CHECK(std::vector<int32_t>(head.begin(), head.begin() + 100) == ids);
  // Without spaces there is nowhere to split: the text is one piece.
  const std::string word(1 << 16, 'a');
  CHECK(tok.EncodePrefix(word, true, 10, 1024, &encoded).size() == 10);
  CHECK(encoded == word.size());
}
