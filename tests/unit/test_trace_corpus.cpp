// Corpus input for tracing: JSONL with text or input_ids, plain text files, domains, and every
// kind of bad line as an error naming file:line and the field.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/corpus/corpus.h"
#include "core/error.h"
#include "core/sentencepiece_tokenizer.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::TinyModel;

namespace {

std::filesystem::path WriteFile(const std::string& dir, const std::string& name,
                                const std::string& content) {
  const auto path = TempDir(dir) / name;
  std::ofstream(path) << content;
  return path;
}

}  // namespace

TEST_CASE("JSONL corpora: text, input_ids, ids and domains", "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const Corpus c = ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, {});
  REQUIRE(c.documents.size() == 10);
  CHECK(c.domains == std::vector<std::string>{"legal", "code", "prose"});
  CHECK(c.documents[0].source_id == "apache-def");
  CHECK(c.documents[5].source_id == "7");  // numeric ids as their decimal text
  CHECK(c.documents[3].domain == 1);
  CHECK(c.documents[1].ids ==
        tok.Encode("Subject to the terms and conditions of this License, each "
                   "Contributor hereby grants to You a perpetual, worldwide, "
                   "non-exclusive, no-charge, royalty-free, irrevocable copyright "
                   "license."));
  CHECK(c.documents[1].ids.front() == tok.bos_id());
  // Pre-tokenized documents are taken as they are.
  CHECK(c.documents[8].ids ==
        std::vector<int32_t>{1, 428, 473, 429, 355, 431, 449, 280, 273, 440, 439, 510, 428, 480});
  CHECK(c.documents[0].ids.size() > 256);  // longer than the default model's context
  CHECK(c.skipped.empty());
  CHECK(c.Fingerprint() == ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, {}).Fingerprint());
}

TEST_CASE("plain text files are one document of the --domain domain", "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const auto file = WriteFile("corpus_plain", "story.txt", "Once upon a time.\n");
  const Corpus c = ReadCorpus({file}, &tok, 512, {"fiction", {}});
  REQUIRE(c.documents.size() == 1);
  CHECK(c.documents[0].source_id == "story.txt");
  CHECK(c.domains == std::vector<std::string>{"fiction"});
  CHECK_THROWS_WITH(ReadCorpus({file}, &tok, 512, {}),
                    Catch::Contains("story.txt") && Catch::Contains("--domain"));
}

TEST_CASE("bad corpus lines are errors naming file:line and the field", "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const std::string good = R"({"id": "a", "domain": "d", "text": "fine"})";
  struct Case {
    std::string line, expect;
  };
  const std::vector<Case> cases = {
      {"{not json", "is not valid JSON"},
      {R"(["a list"])", "must be a JSON object"},
      {R"({"domain": "d"})", "needs a field \"text\""},
      {R"({"domain": "d", "text": 5})", "field \"text\" must be a string"},
      {R"({"domain": "d", "text": "x", "input_ids": [1]})", "both \"text\" and \"input_ids\""},
      {R"({"domain": "d", "input_ids": [1, 9999]})", "\"input_ids\"[1] = 9999 is outside"},
      {R"({"domain": "d", "input_ids": [1, "x"]})", "\"input_ids\"[1] must be an integer"},
      {R"({"domain": "d", "input_ids": 3})", "must be a list of integers"},
      {R"({"domain": 3, "text": "x"})", "field \"domain\" must be a non-empty string"},
      {R"({"text": "x"})", "needs a field \"domain\""},
      {R"({"id": {"x": 1}, "domain": "d", "text": "x"})", "field \"id\" must be"},
  };
  for (const Case& k : cases) {
    SECTION(k.expect) {
      const auto file = WriteFile("corpus_bad", "bad.jsonl", good + "\n\n" + k.line + "\n");
      CHECK_THROWS_WITH(ReadCorpus({file}, &tok, 512, {}),
                        Catch::Contains("bad.jsonl:3") && Catch::Contains(k.expect));
    }
  }
  SECTION("missing files and folders") {
    CHECK_THROWS_WITH(ReadCorpus({TempDir("corpus_bad") / "none.jsonl"}, &tok, 512, {}),
                      Catch::Contains("none.jsonl") && Catch::Contains("does not exist"));
    CHECK_THROWS_WITH(ReadCorpus({TempDir("corpus_dir")}, &tok, 512, {}),
                      Catch::Contains("is a folder"));
  }
  SECTION("text without a tokenizer") {
    const auto file = WriteFile("corpus_bad", "t.jsonl", good + "\n");
    CHECK_THROWS_WITH(ReadCorpus({file}, nullptr, 512, {}), Catch::Contains("tokenizer"));
  }
}

TEST_CASE("blank documents are skipped and counted, not traced", "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const auto file = WriteFile("corpus_blank", "b.jsonl",
                              R"({"domain": "d", "text": "   \n\t "})"
                              "\n"
                              R"({"domain": "d", "text": "words"})"
                              "\n"
                              R"({"domain": "d", "input_ids": []})"
                              "\n");
  const Corpus c = ReadCorpus({file}, &tok, 512, {});
  CHECK(c.documents.size() == 1);
  REQUIRE(c.skipped.size() == 2);
  CHECK_THAT(c.skipped[0], Catch::Contains("b.jsonl:1") && Catch::Contains("whitespace"));
  CHECK_THAT(c.skipped[1], Catch::Contains("b.jsonl:3"));
}

TEST_CASE("the domain filter keeps named domains and rejects unknown ones", "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const Corpus c = ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, {"", {"prose", "code"}});
  CHECK(c.domains == std::vector<std::string>{"code", "prose"});
  CHECK(c.documents.size() == 7);
  for (const CorpusDocument& d : c.documents) CHECK(d.domain >= 0);
  CHECK(c.documents[0].domain == 0);  // "code" is first in corpus order now
  CHECK_THROWS_WITH(ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, {"", {"poetry"}}),
                    Catch::Contains("poetry") && Catch::Contains("legal, code, prose"));
}

TEST_CASE("corpus caps keep each domain's first documents and each document's first tokens",
          "[trace][corpus]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const Corpus all = ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, {});
  CorpusOptions o;
  o.max_documents_per_domain = 2;
  o.max_tokens_per_document = 20;
  const Corpus capped = ReadCorpus({trace_test::TinyCorpus()}, &tok, 512, o);
  CHECK(capped.domains == all.domains);
  std::vector<size_t> kept;  // indices into `all` of the first two documents of each domain
  std::vector<int> seen(all.domains.size(), 0);
  for (size_t d = 0; d < all.documents.size(); ++d)
    if (seen[static_cast<size_t>(all.documents[d].domain)]++ < 2) kept.push_back(d);
  REQUIRE(capped.documents.size() == kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::vector<int32_t>& full = all.documents[kept[i]].ids;
    const size_t n = std::min<size_t>(full.size(), 20);
    CHECK(capped.documents[i].source_id == all.documents[kept[i]].source_id);
    CHECK(capped.documents[i].ids == std::vector<int32_t>(full.begin(), full.begin() + n));
  }
}

TEST_CASE("hostile corpus sizes are bounded errors naming file:line and the field",
          "[trace][corpus][bad-input]") {
  const SentencePieceTokenizer tok(TinyModel() / "tokenizer.model");
  const std::string good = R"({"id": "a", "domain": "d", "text": "fine"})";
  auto message = [&](const std::filesystem::path& file, const CorpusOptions& o) -> std::string {
    try {
      ReadCorpus({file}, &tok, 512, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  SECTION("a line longer than the line limit") {
    CorpusOptions o;
    o.max_line_bytes = 4096;
    const auto file =
        WriteFile("corpus_long", "long.jsonl",
                  good + "\n" + R"({"domain": "d", "text": ")" + std::string(16384, 'x') + "\"}\n");
    const std::string m = message(file, o);
    CHECK_THAT(m, Catch::Contains("long.jsonl:2") && Catch::Contains("longer than 4096 bytes"));
    const auto text = WriteFile("corpus_long_text", "long.txt", std::string(8192, 'y'));
    o.default_domain = "d";
    CHECK_THAT(message(text, o), Catch::Contains("long.txt") && Catch::Contains("4096 bytes"));
  }
  SECTION("an id longer than 1024 bytes") {
    const auto file = WriteFile("corpus_id", "ids.jsonl",
                                good + "\n" + R"({"id": ")" + std::string(4 << 20, 'i') +
                                    R"(", "domain": "d", "text": "x"})" + "\n");
    const std::string m = message(file, {});
    CHECK_THAT(m, Catch::Contains("ids.jsonl:2") &&
                      Catch::Contains("field \"id\" is 4194304 bytes") && Catch::Contains("1024"));
    CHECK(m.size() < 1000);
  }
  SECTION("an unterminated string of a few MiB is not echoed whole") {
    const auto file = WriteFile("corpus_unterminated", "open.jsonl",
                                R"({"domain": "d", "text": ")" + std::string(3 << 20, 'z'));
    const std::string m = message(file, {});
    CHECK_THAT(m, Catch::Contains("open.jsonl:1") && Catch::Contains("is not valid JSON"));
    CHECK(m.size() < 1000);
  }
  SECTION("trailing content after a line's object") {
    const auto file = WriteFile("corpus_trailing", "t.jsonl", good + " garbage\n");
    CHECK_THAT(message(file, {}),
               Catch::Contains("t.jsonl:1") && Catch::Contains("not valid JSON"));
  }
  SECTION("ids that do not fit an int32, or are not integers") {
    for (const std::string bad : {"4294967297", "1099511627776", "1.5", "18446744073709551616"}) {
      const auto file =
          WriteFile("corpus_ids", "n.jsonl", R"({"domain": "d", "input_ids": [1, )" + bad + "]}\n");
      CHECK_THAT(message(file, {}),
                 Catch::Contains("n.jsonl:1") && Catch::Contains("\"input_ids\"[1]"));
    }
  }
  SECTION("a long line is tokenized as far as the cap, with the ids of the whole") {
    std::string text;
    while (text.size() < (size_t{144} << 10))  // three pieces
      text += "Permission is hereby granted, free of charge. ";
    const auto file = WriteFile("corpus_capped", "c.jsonl",
                                nlohmann::json{{"domain", "d"}, {"text", text}}.dump() + "\n");
    CorpusOptions o;
    o.max_tokens_per_document = 300;
    const Corpus capped = ReadCorpus({file}, &tok, 512, o);
    const std::vector<int32_t> whole = tok.Encode(text);
    REQUIRE(capped.documents.size() == 1);
    CHECK(capped.documents[0].ids == std::vector<int32_t>(whole.begin(), whole.begin() + 300));
    const Corpus all = ReadCorpus({file}, &tok, 512, {});
    CHECK(all.documents[0].ids == whole);
  }
}
