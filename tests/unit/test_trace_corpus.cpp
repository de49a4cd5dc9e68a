// Corpus input for tracing: JSONL with text or input_ids, plain text files, domains, and every
// kind of bad line as an error naming file:line and the field.
#include <catch2/catch.hpp>
#include <fstream>

#include "analysis/corpus/corpus.h"
#include "core/error.h"
#include "core/tokenizer.h"
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
  const Tokenizer tok(TinyModel() / "tokenizer.model");
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
  const Tokenizer tok(TinyModel() / "tokenizer.model");
  const auto file = WriteFile("corpus_plain", "story.txt", "Once upon a time.\n");
  const Corpus c = ReadCorpus({file}, &tok, 512, {"fiction", {}});
  REQUIRE(c.documents.size() == 1);
  CHECK(c.documents[0].source_id == "story.txt");
  CHECK(c.domains == std::vector<std::string>{"fiction"});
  CHECK_THROWS_WITH(ReadCorpus({file}, &tok, 512, {}),
                    Catch::Contains("story.txt") && Catch::Contains("--domain"));
}

TEST_CASE("bad corpus lines are errors naming file:line and the field", "[trace][corpus]") {
  const Tokenizer tok(TinyModel() / "tokenizer.model");
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
      {R"({"domain": "d", "input_ids": [1, "x"]})", "\"input_ids\"[1] is not an integer"},
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
                      Catch::Contains("none.jsonl") && Catch::Contains("cannot open"));
    CHECK_THROWS_WITH(ReadCorpus({TempDir("corpus_dir")}, &tok, 512, {}),
                      Catch::Contains("is a folder"));
  }
  SECTION("text without a tokenizer") {
    const auto file = WriteFile("corpus_bad", "t.jsonl", good + "\n");
    CHECK_THROWS_WITH(ReadCorpus({file}, nullptr, 512, {}), Catch::Contains("tokenizer"));
  }
}

TEST_CASE("blank documents are skipped and counted, not traced", "[trace][corpus]") {
  const Tokenizer tok(TinyModel() / "tokenizer.model");
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
  const Tokenizer tok(TinyModel() / "tokenizer.model");
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
  const Tokenizer tok(TinyModel() / "tokenizer.model");
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
