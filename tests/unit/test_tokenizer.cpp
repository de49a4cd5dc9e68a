// SentencePiece through libsentencepiece with LLaMA's BOS/EOS handling.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "test_paths.h"

using namespace moe;

TEST_CASE("the LLaMA-2 tokenizer reproduces the original's ids", "[tokenizer][golden]") {
  const auto dir = GoldenDir() / "llama2-tokenizer";
  const Tokenizer tok(dir / "tokenizer.model");
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
  const Tokenizer tok(std::filesystem::path(MOESCOPE_SOURCE_DIR) /
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
  CHECK_THROWS_WITH(Tokenizer(dir / "tokenizer.model"),
                    Catch::Contains("tokenizer.model") && Catch::Contains("not a SentencePiece"));
  CHECK_THROWS_WITH(Tokenizer(dir / "absent.model"), Catch::Contains("does not exist"));
}
