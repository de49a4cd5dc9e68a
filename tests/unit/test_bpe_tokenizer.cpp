// tokenizer.json byte-level BPE (core/bpe_tokenizer.h): ids equal to Hugging Face's tokenizers
// library (run through Node from tests/tokenizer_reference, installed by scripts/install-deps.sh)
// on every string of strings.json for each fixture of tests/fixtures/tokenizers, round trips,
// EncodePrefix, BOS/EOS, OpenTokenizer, and one-line errors on bad files.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/bpe_tokenizer.h"
#include "core/byte_level.h"
#include "core/error.h"
#include "core/nfc.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/utf8.h"
#include "test_paths.h"
#include "trace_test_util.h"

using namespace moe;
using nlohmann::json;
using trace_test::Cli;
using trace_test::CommandResult;
using trace_test::Quote;
using trace_test::RunCommand;

namespace {

const char* const kFixtures[] = {"gpt_neox_bpe.json", "qwen2_bpe.json"};

std::filesystem::path ReferenceDir() {
  return std::filesystem::path(MOESCOPE_SOURCE_DIR) / "tests" / "tokenizer_reference";
}
std::filesystem::path TokenizerFixture(const std::string& name) {
  return FixtureDir() / "tokenizers" / name;
}

struct ReferenceString {
  std::string bytes;  // what moescope encodes
  bool valid = true;  // valid UTF-8 (else the library saw it with U+FFFD, as moescope does)
};

std::vector<ReferenceString> ReferenceStrings() {
  std::ifstream in(ReferenceDir() / "strings.json");
  const json all = json::parse(in);
  std::vector<ReferenceString> out;
  for (const json& s : all) {
    if (s.is_string()) {
      out.push_back({s.get<std::string>(), true});
      continue;
    }
    const std::string hex = s.at("hex").get<std::string>();
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
      bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    out.push_back({bytes, IsValidUtf8(bytes)});
  }
  return out;
}

// The library's output for `args` (encode.js's usage). Node and the package are installed by
// scripts/install-deps.sh, so their absence fails the test rather than skipping it.
json RunReference(const std::string& args) {
  std::string command = MOESCOPE_NODE;
  command.append(" ")
      .append(Quote((ReferenceDir() / "encode.js").string()))
      .append(" ")
      .append(args);
  const CommandResult r = RunCommand(command);
  INFO(r.output);
  if (r.status != 0)
    FAIL(
        "the tokenizer reference did not run (scripts/install-deps.sh installs Node.js and runs "
        "npm ci --prefix tests/tokenizer_reference)");
  return json::parse(r.output);
}

// A small valid tokenizer.json: the byte alphabet, "a"+"b" merged, "<|endoftext|>" added.
json MinimalTokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteLevelChar(static_cast<unsigned char>(b))] = b;
  vocab["ab"] = 256;
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", 257}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}}};
}

std::filesystem::path WriteTokenizer(const json& j, const std::string& name) {
  const std::filesystem::path dir = TempDir(name);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return dir / "tokenizer.json";
}

}  // namespace

TEST_CASE("byte-level BPE gives Hugging Face's ids on every reference string", "[tokenizer]") {
  const std::vector<ReferenceString> strings = ReferenceStrings();
  REQUIRE(strings.size() >= 300);
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) {
      const std::filesystem::path file = TokenizerFixture(name);
      const BpeTokenizer tok(file);
      std::string args = Quote(file.string());
      args.append(" ").append(Quote((ReferenceDir() / "strings.json").string()));
      const json ref = RunReference(args);
      REQUIRE(ref.at("ids").size() == strings.size());
      size_t equal = 0;
      for (size_t i = 0; i < strings.size(); ++i) {
        const std::string& s = strings[i].bytes;
        INFO(name << " string " << i << ": " << Clipped(s));
        const std::vector<int32_t> ids = tok.Encode(s, /*add_bos=*/false);
        CHECK(ids == ref["ids"][i].get<std::vector<int32_t>>());
        // The library with its post-processor's special tokens = add_bos and add_eos when the
        // template holds them (gpt_neox_bpe.json: EOS after; qwen2_bpe.json: none).
        const bool template_eos = std::string(name) == "gpt_neox_bpe.json";
        CHECK(tok.Encode(s, true, template_eos) ==
              ref["ids_special"][i].get<std::vector<int32_t>>());
        CHECK(tok.Decode(ids) == ref["decoded"][i].get<std::string>());
        if (ids == ref["ids"][i].get<std::vector<int32_t>>()) ++equal;
        // Round trip: the text back, normalized, for valid text without special tokens.
        if (strings[i].valid && s.find("<|") == std::string::npos)
          CHECK(tok.Decode(ids) == NfcNormalized(s));
      }
      WARN(name << ": " << equal << " of " << strings.size() << " strings give the library's ids");
    }
  }
}

TEST_CASE("byte-level BPE EncodePrefix is a prefix of Encode", "[tokenizer]") {
  std::string text;
  for (const ReferenceString& s : ReferenceStrings()) text.append(s.bytes).append(" ");
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) {
      const BpeTokenizer tok(TokenizerFixture(name));
      CHECK(tok.splits_at_spaces());
      const std::vector<int32_t> whole = tok.Encode(text, true);
      for (const size_t piece : {size_t{1}, size_t{7}, size_t{100}, Tokenizer::kPieceBytes}) {
        INFO("piece bytes " << piece);
        CHECK(tok.EncodePrefix(text, true, 0, piece) == whole);
        for (const size_t max : {size_t{1}, size_t{50}, size_t{1000}}) {
          size_t encoded = 0;
          const std::vector<int32_t> prefix = tok.EncodePrefix(text, true, max, piece, &encoded);
          CHECK(prefix == std::vector<int32_t>(whole.begin(), whole.begin() + max));
          CHECK(encoded <= text.size());
        }
      }
    }
  }
}

TEST_CASE("BOS and EOS of a byte-level BPE come from its template", "[tokenizer]") {
  const BpeTokenizer qwen(TokenizerFixture("qwen2_bpe.json"));
  CHECK(qwen.bos_id() == -1);  // Qwen has no BOS: add_bos adds nothing
  CHECK(qwen.Piece(qwen.eos_id()) == "<|endoftext|>");
  CHECK(qwen.Encode("Hi there", true) == qwen.Encode("Hi there", false));
  CHECK(qwen.Encode("Hi there", false, true).back() == qwen.eos_id());
  CHECK(qwen.Decode(qwen.Encode("Hi there", true, true)) == "Hi there");

  const BpeTokenizer neox(TokenizerFixture("gpt_neox_bpe.json"));
  CHECK(neox.bos_id() == -1);
  CHECK(neox.eos_id() == 0);
  // Pieces are spelled in the byte-level alphabet: a space is "Ġ".
  CHECK(neox.Piece(neox.Encode(" the", false).front()).rfind("\xc4\xa0", 0) == 0);

  // A template with a token before the sequence: that token is BOS.
  std::ifstream in(TokenizerFixture("gpt_neox_bpe.json"));
  json j = json::parse(in);
  j["post_processor"]["single"] = json::parse(
      R"([{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}])");
  const BpeTokenizer with_bos(WriteTokenizer(j, "bpe_bos"));
  CHECK(with_bos.bos_id() == 0);
  const std::vector<int32_t> ids = with_bos.Encode("Hello world", true);
  CHECK(ids.front() == 0);
  CHECK(std::vector<int32_t>(ids.begin() + 1, ids.end()) == with_bos.Encode("Hello world", false));
  CHECK(with_bos.EncodePrefix("Hello world", true, 1) == std::vector<int32_t>{0});
  CHECK(with_bos.Decode(ids) == "Hello world");
}

TEST_CASE("OpenTokenizer prefers tokenizer.model, else tokenizer.json", "[tokenizer]") {
  const std::filesystem::path dir = TempDir("open_tokenizer");
  CHECK(OpenTokenizer(dir) == nullptr);
  std::filesystem::copy_file(TokenizerFixture("qwen2_bpe.json"), dir / "tokenizer.json");
  const std::unique_ptr<Tokenizer> bpe = OpenTokenizer(dir);
  REQUIRE(bpe != nullptr);
  CHECK(dynamic_cast<const BpeTokenizer*>(bpe.get()) != nullptr);
  std::filesystem::copy_file(FixtureDir() / "tiny_moe" / "tokenizer.model",
                             dir / "tokenizer.model");
  const std::unique_ptr<Tokenizer> sp = OpenTokenizer(dir);
  CHECK(dynamic_cast<const SentencePieceTokenizer*>(sp.get()) != nullptr);
}

TEST_CASE("moescope tokenize reads a folder with only tokenizer.json", "[tokenizer][cli]") {
  const std::filesystem::path dir = TempDir("tokenize_json");
  std::filesystem::copy_file(TokenizerFixture("qwen2_bpe.json"), dir / "tokenizer.json");
  const BpeTokenizer tok(dir / "tokenizer.json");
  std::string expected;
  for (const int32_t id : tok.Encode("Hello, world!"))
    expected.append(expected.empty() ? "" : " ").append(std::to_string(id));
  const CommandResult r =
      RunCommand(Cli() + " tokenize --model " + Quote(dir.string()) + " 'Hello, world!'");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output == expected + "\n");
}

TEST_CASE("invalid UTF-8 is encoded as its U+FFFD replacement", "[tokenizer]") {
  CHECK(ValidUtf8("f\xff"
                  "o\x80\xe2\x82") ==
        "f\xef\xbf\xbd"
        "o\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(ValidUtf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  CHECK(ValidUtf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong
  CHECK(ValidUtf8("\xf0\x9f\x98") == "\xef\xbf\xbd");                          // cut short
  CHECK(ValidUtf8("ok \xc3\xa9") == "ok \xc3\xa9");
  const BpeTokenizer tok(TokenizerFixture("qwen2_bpe.json"));
  CHECK(tok.Encode("a\xff"
                   "b",
                   false) == tok.Encode("a\xef\xbf\xbd"
                                        "b",
                                        false));
}

TEST_CASE("bad tokenizer.json files are one-line errors naming the field",
          "[tokenizer][bad-input]") {
  struct Case {
    const char* what;
    std::function<void(json&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"WordPiece", [](json& j) { j["model"]["type"] = "WordPiece"; },
       "model.type is 'WordPiece'; only 'BPE' is supported"},
      {"Unigram", [](json& j) { j["model"]["type"] = "Unigram"; }, "model.type is 'Unigram'"},
      {"WordLevel", [](json& j) { j["model"]["type"] = "WordLevel"; }, "model.type is 'WordLevel'"},
      {"model type", [](json& j) { j["model"]["type"] = 3; }, "model.type must be a string"},
      {"no model", [](json& j) { j.erase("model"); }, "model is missing"},
      {"byte fallback", [](json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback"},
      {"NFKC",
       [](json& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       },
       "normalizer.type is 'NFKC'"},
      {"Whitespace",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       "pre_tokenizer.type is 'Whitespace'"},
      {"no pre-tokenizer", [](json& j) { j["pre_tokenizer"] = nullptr; }, "pre_tokenizer is null"},
      {"Split behavior",
       [](json& j) {
         j["pre_tokenizer"] = json::parse(
             R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "a"},
                 "behavior": "Removed", "invert": false}, {"type": "ByteLevel"}]})");
       },
       "pre_tokenizer.pretokenizers[0].behavior is 'Removed'"},
      {"bad regex",
       [](json& j) {
         j["pre_tokenizer"] = json::parse(
             R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(a"},
                 "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]})");
       },
       "is not a regex PCRE2 reads"},
      {"decoder",
       [](json& j) {
         j["decoder"] = {{"type", "WordPiece"}};
       },
       "decoder.type is 'WordPiece'"},
      {"post-processor",
       [](json& j) {
         j["post_processor"] = {{"type", "BertProcessing"}};
       },
       "post_processor.type is 'BertProcessing'"},
      {"vocab type", [](json& j) { j["model"]["vocab"] = json::array(); },
       "model.vocab must be an object"},
      {"id type", [](json& j) { j["model"]["vocab"]["a"] = "x"; },
       "model.vocab['a'] must be an integer"},
      {"negative id", [](json& j) { j["model"]["vocab"]["a"] = -1; },
       "model.vocab['a'] must be an integer in"},
      {"huge id", [](json& j) { j["model"]["vocab"]["ab"] = 1LL << 40; }, "model.vocab['ab']"},
      {"far-off id", [](json& j) { j["added_tokens"][0]["id"] = 10000000; },
       "id 10000000 is far beyond the 258 tokens"},
      {"duplicated id", [](json& j) { j["model"]["vocab"]["ab"] = 5; }, "already the id of"},
      {"unknown merge", [](json& j) { j["model"]["merges"] = {"a zz"}; },
       "model.merges[0] names a token 'zz', which is not in model.vocab"},
      {"merge not in vocab", [](json& j) { j["model"]["merges"] = {"b a"}; },
       "model.merges[0] names (merged) the token 'ba'"},
      {"merge of three", [](json& j) { j["model"]["merges"] = {"a b c"}; },
       "model.merges[0] must be two tokens"},
      {"merge type", [](json& j) { j["model"]["merges"] = {5}; }, "model.merges[0] must be"},
      {"merges type", [](json& j) { j["model"]["merges"] = "a b"; },
       "model.merges must be an array"},
      {"added type", [](json& j) { j["added_tokens"] = 1; }, "added_tokens must be an array"},
      {"added id", [](json& j) { j["added_tokens"][0]["id"] = 3; },
       "added_tokens[0].id 3 is already the id of"},
      {"added content", [](json& j) { j["added_tokens"][0]["content"] = nullptr; },
       "added_tokens[0].content must be a string"},
      {"added twice", [](json& j) { j["added_tokens"].push_back(j["added_tokens"][0]); },
       "added_tokens[1].id 257 is the id of an earlier added token"},
      {"template token",
       [](json& j) {
         j["post_processor"] = json::parse(
             R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}},
                 {"Sequence": {"id": "A"}}], "special_tokens": {}})");
       },
       "post_processor.special_tokens['<s>'] is missing"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      json j = MinimalTokenizer();
      c.change(j);
      const std::filesystem::path file = WriteTokenizer(j, "bad_bpe");
      try {
        BpeTokenizer tok(file);
        FAIL("no error for " << c.what);
      } catch (const Error& e) {
        const std::string message = e.what();
        INFO(message);
        CHECK(message.rfind(file.string() + ": ", 0) == 0);
        CHECK(message.find(c.message) != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);
      }
    }
  }
  // The minimal file itself is fine, and not JSON / not an object are errors too.
  const BpeTokenizer ok(WriteTokenizer(MinimalTokenizer(), "good_bpe"));
  CHECK(ok.Encode("abab", false) == std::vector<int32_t>{256, 256});
  const std::filesystem::path dir = TempDir("bad_bpe_json");
  std::ofstream(dir / "tokenizer.json") << "{";
  CHECK_THROWS_WITH(BpeTokenizer(dir / "tokenizer.json"), Catch::Contains("is not valid JSON"));
  std::ofstream(dir / "array.json") << "[]";
  CHECK_THROWS_WITH(BpeTokenizer(dir / "array.json"),
                    Catch::Contains("the file must be an object"));
  CHECK_THROWS_AS(ok.Decode({9999}), Error);
  CHECK_THROWS_AS(ok.Piece(-1), Error);
}

// Hidden: tokens per second on the sample corpus, moescope against the library.
TEST_CASE("byte-level BPE speed on the sample corpus", "[.][tokenizer-speed]") {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(MOESCOPE_SOURCE_DIR) / "datasets" / "sample"))
    if (e.path().extension() == ".jsonl") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<std::string> texts;
  for (const std::string& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line);
      if (j.contains("text") && j["text"].is_string()) texts.push_back(j["text"]);
    }
  }
  for (const char* name : kFixtures) {
    std::string args = Quote(TokenizerFixture(name).string()) + " --corpus";
    for (const std::string& f : files) args.append(" ").append(Quote(f));
    const json ref = RunReference(args);
    const BpeTokenizer tok(TokenizerFixture(name));
    const auto start = std::chrono::steady_clock::now();
    size_t tokens = 0;
    for (const std::string& t : texts) tokens += tok.Encode(t, false).size();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(tokens == ref["tokens"].get<size_t>());
    WARN(name << ": moescope " << tokens / seconds << " tokens/s (" << tokens << " tokens, "
              << seconds << " s); Hugging Face tokenizers via Node "
              << ref["tokens"].get<double>() / ref["seconds"].get<double>() << " tokens/s");
  }
}
