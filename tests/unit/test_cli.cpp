// The moescope program as a user runs it: bad input gives one line on stderr naming the file
// and the problem, a non-zero exit code, and no crash.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/safetensors_file.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliResult RunCli(const std::string& args) {
  const fs::path dir = TempDir("cli-output");
  const std::string cmd = std::string(MOESCOPE_CLI) + " " + args + " >" + (dir / "out").string() +
                          " 2>" + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(dir / "out");
  r.err = Slurp(dir / "err");
  return r;
}

fs::path TinyModel() {
  return fs::path(MOESCOPE_SOURCE_DIR) / "tests/fixtures/tiny_moe";
}

void ExpectCleanFailure(const CliResult& r, const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("moescope: error: ") && Contains(message));
  // One line only.
  CHECK(r.err.find('\n') == r.err.size() - 1);
}

}  // namespace

TEST_CASE("info reports the released 3.5B (2/8) shape from its config alone", "[cli]") {
  const CliResult r =
      RunCli("info --config " + (FixtureDir() / "configs/llama-moe-v1-3_5b-2_8.json").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("6.74B (6740514816) total") && Contains("3.49B"));
  CHECK_THAT(r.out, Contains("8 per layer, top-2, sizes 1376 each"));
}

TEST_CASE("info describes another family's router and size from its config alone", "[cli]") {
  const CliResult r =
      RunCli("info --config " + (FixtureDir() / "configs/Qwen__Qwen3-30B-A3B.json").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("qwen3_moe") && Contains("30.53B") && Contains("3.35B"));
  CHECK_THAT(r.out, Contains("softmax over 128, top-8 of the scores, renormalized"));
  CHECK_THAT(r.out, Contains("q/k RMSNorm per head"));
}

TEST_CASE("every subcommand has --help", "[cli]") {
  for (const char* cmd : {"info", "generate", "score", "classify", "answer", "convert", "forward",
                          "importance", "prune", "prune-curve"}) {
    const CliResult r = RunCli(std::string(cmd) + " --help");
    INFO(cmd);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("--help"));
  }
}

TEST_CASE("generate and score run on the bundled model", "[cli]") {
  const CliResult g = RunCli("generate --prompt 'The license' -n 8 --seed 3 --temperature 0.8");
  INFO(g.err);
  CHECK(g.exit_code == 0);
  CHECK_THAT(g.out, Contains("The license"));
  CHECK_THAT(g.err, Contains("generated 8 tokens"));
  const CliResult s = RunCli("score --text 'Permission is hereby granted'");
  CHECK(s.exit_code == 0);
  CHECK_THAT(s.out, Contains("ppl"));
  // Weights copied into huge pages compute the same numbers as weights read in place.
  const CliResult huge = RunCli("score --huge-pages --text 'Permission is hereby granted'");
  CHECK(huge.exit_code == 0);
  CHECK(huge.out == s.out);
  const CliResult g_huge =
      RunCli("generate --huge-pages --prompt 'The license' -n 8 --seed 3 --temperature 0.8");
  CHECK(g_huge.out == g.out);
  // generate copies in the background by default; read in place it says the same.
  const CliResult g_mapped = RunCli(
      "generate --weight-pages mapped --prompt 'The license' -n 8 --seed 3 --temperature 0.8");
  CHECK(g_mapped.out == g.out);
  const CliResult s_background =
      RunCli("score --weight-pages background --text 'Permission is hereby granted'");
  CHECK(s_background.out == s.out);
  const CliResult bad = RunCli("score --weight-pages paged --text 'x'");
  CHECK(bad.exit_code != 0);
  CHECK_THAT(bad.err, Contains("--weight-pages"));
  const CliResult both = RunCli("score --weight-pages mapped --huge-pages --text 'x'");
  CHECK(both.exit_code != 0);
}

TEST_CASE("generate runs with a bf16 KV cache", "[cli][kv-cache]") {
  const CliResult g = RunCli("generate --kv-cache bf16 --prompt 'The license' -n 8 --ignore-eos");
  INFO(g.err);
  CHECK(g.exit_code == 0);
  CHECK_THAT(g.out, Contains("The license"));
  CHECK_THAT(g.err, Contains("generated 8 tokens"));
}

TEST_CASE("forward writes the golden tensor names", "[cli]") {
  const fs::path dir = TempDir("cli-forward");
  std::ofstream(dir / "in.json") << R"({"input_ids": [[1, 20, 30, 40], [1, 50, 60, 70]]})";
  const CliResult r =
      RunCli("forward --model " + TinyModel().string() + " --input " + (dir / "in.json").string() +
             " --output " + (dir / "out.safetensors").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const moe::SafetensorsFile out((dir / "out.safetensors").string());
  CHECK(out.Tensor("logits").shape == moe::Shape{2, 4, 512});
  CHECK(out.Tensor("layers.1.topk_indices").shape == moe::Shape{8, 2});
  CHECK(out.Tensor("layers.1.load").dtype == moe::DType::kI32);
  CHECK(out.Tensor("layers.0.gate_logits").shape == moe::Shape{8, 8});
}

TEST_CASE("bad input: one clear line, exit 1, nothing written", "[cli][bad-input]") {
  const fs::path model = TinyModel();
  SECTION("truncated safetensors") {
    const fs::path dir = CopyModel(model, "cli-truncated");
    fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") / 2);
    ExpectCleanFailure(RunCli("generate --model " + dir.string() + " -p hi"), "model.safetensors");
  }
  SECTION("header length past the end of the file") {
    const fs::path dir = CopyModel(model, "cli-header");
    fs::resize_file(dir / "model.safetensors", 100);
    ExpectCleanFailure(RunCli("score --model " + dir.string() + " -t hi"), "header");
  }
  SECTION("unknown gate type") {
    const fs::path dir = CopyModel(model, "cli-gate");
    std::string config = Slurp(dir / "config.json");
    config.replace(config.find("TopKBalancedNoisyGate"), 21, "SwitchBalancedGate");
    std::ofstream(dir / "config.json") << config;
    ExpectCleanFailure(RunCli("info --model " + dir.string()), "gate_type is 'SwitchBalancedGate'");
  }
  SECTION("a pickle that asks for another global") {
    const fs::path dir = TempDir("cli-pickle");
    fs::copy_file(model / "config.json", dir / "config.json");
    fs::copy_file(FixtureDir() / "torch_bin/os_system.bin", dir / "pytorch_model.bin");
    ExpectCleanFailure(RunCli("generate --model " + dir.string() + " -p hi"), "os");
  }
  SECTION("missing tensor") {
    const fs::path dir = CopyModel(FixtureDir() / "tied_embeddings", "cli-missing");
    std::string config = Slurp(dir / "config.json");
    const std::string tied = "\"tie_word_embeddings\": true";
    config.replace(config.find(tied), tied.size(), "\"tie_word_embeddings\": false");
    std::ofstream(dir / "config.json") << config;
    ExpectCleanFailure(
        RunCli("forward --model " + dir.string() + " --input " + (dir / "inputs.json").string() +
               " --output " + (dir / "never.safetensors").string()),
        "lm_head.weight");
    CHECK_FALSE(fs::exists(dir / "never.safetensors"));
  }
  SECTION("unknown KV cache type") {
    ExpectCleanFailure(RunCli("generate --kv-cache f8 -p hi"),
                       "--kv-cache: is 'f8', expected f32 or bf16");
  }
  SECTION("empty prompt") {
    ExpectCleanFailure(RunCli("generate -p ''"), "prompt is empty");
  }
  SECTION("prompt longer than the context") {
    std::string ids = "1";
    for (int i = 0; i < 300; ++i) ids += ",5";
    ExpectCleanFailure(RunCli("generate --ids " + ids), "longer than the context length of 256");
  }
  SECTION("token id outside the vocabulary") {
    const fs::path dir = TempDir("cli-vocab");
    std::ofstream(dir / "in.json") << R"({"input_ids": [[1, 9999]]})";
    ExpectCleanFailure(RunCli("forward --input " + (dir / "in.json").string() + " --output " +
                              (dir / "out.safetensors").string()),
                       "input_ids[0][1] = 9999 is outside the vocabulary");
    CHECK_FALSE(fs::exists(dir / "out.safetensors"));
  }
}

TEST_CASE("tokenize prints the ids the library computes", "[cli][tokenizer]") {
  const CliResult r = RunCli("tokenize --pieces 'free software'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("1 ", 0) == 0);  // BOS first
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
}

TEST_CASE("convert writes one safetensors file from a sharded .bin checkpoint", "[cli]") {
  const fs::path out = TempDir("cli-convert") / "model";
  const CliResult r =
      RunCli("convert " + (FixtureDir() / "sharded_bin").string() + " " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(out / "model.safetensors"));
  CHECK(fs::exists(out / "config.json"));
  // The converted folder gives the same forward outputs as the original.
  const fs::path in_json = FixtureDir() / "sharded_bin/inputs.json";
  const CliResult a =
      RunCli("forward --model " + (FixtureDir() / "sharded_bin").string() + " --input " +
             in_json.string() + " --output " + (out.parent_path() / "a.safetensors").string());
  const CliResult b = RunCli("forward --model " + out.string() + " --input " + in_json.string() +
                             " --output " + (out.parent_path() / "b.safetensors").string());
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  const moe::SafetensorsFile fa((out.parent_path() / "a.safetensors").string());
  const moe::SafetensorsFile fb((out.parent_path() / "b.safetensors").string());
  const moe::TensorView la = fa.Tensor("logits"), lb = fb.Tensor("logits");
  REQUIRE(la.nbytes() == lb.nbytes());
  CHECK(std::memcmp(la.data, lb.data, la.nbytes()) == 0);
}

TEST_CASE("hostile numbers, folders and sizes: one line naming the file and the field",
          "[cli][bad-input]") {
  const fs::path model = TinyModel();
  const fs::path corpus = FixtureDir() / "corpus/tiny.jsonl";
  SECTION("--top-k 0:0 is an error, not a silent k = 2") {
    ExpectCleanFailure(RunCli("score --top-k 0:0 --text 'free software'"), "--top-k");
    ExpectCleanFailure(RunCli("score --top-k 0:1.5 --text 'free software'"), "must be an integer");
  }
  SECTION("a config.json field of the wrong type or out of range") {
    const fs::path dir = CopyModel(model, "cli-config-type");
    nlohmann::json config = nlohmann::json::parse(Slurp(model / "config.json"));
    config["rope_scaling"] = {{"type", "linear"}, {"factor", "two"}};
    std::ofstream(dir / "config.json") << config.dump();
    ExpectCleanFailure(RunCli("info --model " + dir.string()),
                       "config.json: rope_scaling.factor must be a number");
    config = nlohmann::json::parse(Slurp(model / "config.json"));
    config["num_experts"] = 4294967304LL;  // used to wrap to 8
    std::ofstream(dir / "config.json") << config.dump();
    ExpectCleanFailure(RunCli("info --model " + dir.string()),
                       "num_experts must be an integer in [1, 65536], got 4294967304");
  }
  SECTION("folders where files belong") {
    const fs::path dir = TempDir("cli-folders");
    fs::create_directories(dir / "policy.json");
    ExpectCleanFailure(RunCli("tokenize --file " + dir.string() + " x"), "is a folder");
    const fs::path broken = CopyModel(model, "cli-folder-config");
    fs::remove(broken / "config.json");
    fs::create_directories(broken / "config.json");
    ExpectCleanFailure(RunCli("info --model " + broken.string()), "config.json: is a folder");
    const fs::path no_tok = CopyModel(model, "cli-folder-tokenizer");
    fs::remove(no_tok / "tokenizer.model");
    fs::create_directories(no_tok / "tokenizer.model");
    ExpectCleanFailure(RunCli("score --model " + no_tok.string() + " -t hi"),
                       "tokenizer.model: is a folder");
    // --policy and --corpus are checked by the flag parser first: a usage error naming the flag
    // and the path, on one line with exit code 1 like every other error.
    ExpectCleanFailure(RunCli("score -t hi --policy " + (dir / "policy.json").string()),
                       "--policy: File is actually a directory: " + (dir / "policy.json").string());
    ExpectCleanFailure(RunCli("trace -o " + (dir / "t.h5").string() + " --corpus " + dir.string()),
                       "--corpus: File is actually a directory: " + dir.string());
  }
  SECTION("a policy naming expert 99 names the policy file") {
    const fs::path dir = TempDir("cli-policy-99");
    std::ofstream(dir / "e99.json") << R"({"disable": [[0, 99]]})";
    ExpectCleanFailure(RunCli("score --policy " + (dir / "e99.json").string() + " -t hi"),
                       "e99.json: policy layer 0: expert 99 is out of range");
    ExpectCleanFailure(RunCli("trace --corpus " + corpus.string() + " -o " +
                              (dir / "t.h5").string() + " --policy " + (dir / "e99.json").string()),
                       "e99.json");
    CHECK_FALSE(fs::exists(dir / "t.h5"));
  }
  SECTION("a corpus line with a 2 MiB id and an unterminated string") {
    const fs::path dir = TempDir("cli-corpus-sizes");
    std::ofstream(dir / "id.jsonl")
        << R"({"id": ")" << std::string(2 << 20, 'i') << R"(", "domain": "d", "text": "x"})"
        << "\n";
    const CliResult id =
        RunCli("trace --corpus " + (dir / "id.jsonl").string() + " -o " + (dir / "t.h5").string());
    ExpectCleanFailure(id, "id.jsonl:1: field \"id\" is 2097152 bytes long");
    CHECK(id.err.size() < 1000);
    std::ofstream(dir / "open.jsonl")
        << R"({"domain": "d", "text": ")" << std::string(2 << 20, 'z');
    const CliResult open = RunCli("trace --corpus " + (dir / "open.jsonl").string() + " -o " +
                                  (dir / "t.h5").string());
    ExpectCleanFailure(open, "open.jsonl:1: is not valid JSON");
    CHECK(open.err.size() < 1000);
    CHECK_FALSE(fs::exists(dir / "t.h5"));
  }
}
