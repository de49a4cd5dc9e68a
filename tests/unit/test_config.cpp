// config.json parsing: every field that changes the forward pass, and clear errors naming the
// key for unknown or inconsistent values.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "test_paths.h"

using namespace moe;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

json Released() {
  std::ifstream in(FixtureDir() / "configs" / "llama-moe-v1-3_5b-2_8.json");
  return json::parse(in);
}

ModelConfig Parse(const json& j) {
  return ModelConfig::FromJson(j, "config.json");
}

}  // namespace

TEST_CASE("the released LLaMA-MoE-v1-3.5B (2/8) config", "[config]") {
  const ModelConfig c = Parse(Released());
  CHECK(c.is_moe);
  CHECK(c.num_experts == 8);
  CHECK(c.num_selects == 2);
  CHECK(c.size_experts.size() == 32);
  CHECK(c.size_experts[31][7] == 1376);
  CHECK(c.score_scale_factor == std::vector<float>(32, 4.0f));
  CHECK(c.gate_network == GateNetwork::kMlp);
  CHECK(c.head_dim() == 128);
  CHECK(c.rms_norm_eps == Approx(1e-5f));
  // docs/llama-moe-spec.md §1.2: 6,740,514,816 total, about 3.49B activated per token.
  CHECK(c.TotalParameters() == 6740514816LL);
  CHECK(c.ActivatedParameters() == Approx(3.49e9).epsilon(0.005));
}

TEST_CASE("per-layer score_scale_factor, rope_scaling and GQA", "[config]") {
  json j = Released();
  j["num_hidden_layers"] = 2;
  j["size_experts"] = {std::vector<int>(8, 1376), {1000, 1752, 1376, 1376, 1376, 1376, 1376, 1376}};
  j["score_scale_factor"] = {1.0, 2.5};
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  j["num_key_value_heads"] = 8;
  j["gate_network"] = "Linear";  // upstream lower-cases it
  const ModelConfig c = Parse(j);
  CHECK(c.score_scale_factor == std::vector<float>{1.0f, 2.5f});
  CHECK(c.size_experts[1][0] == 1000);
  CHECK(c.rope_scaling == RopeScaling::kDynamic);
  CHECK(c.context_length() == 8192);
  CHECK(c.num_key_value_heads == 8);
  CHECK(c.gate_network == GateNetwork::kLinear);
}

TEST_CASE("size_experts null splits evenly; dense llama runs one expert", "[config]") {
  json j = Released();
  j["size_experts"] = nullptr;
  CHECK(Parse(j).size_experts[0] == std::vector<int>(8, 1376));
  json dense = {{"model_type", "llama"},
                {"vocab_size", 100},
                {"hidden_size", 16},
                {"intermediate_size", 40},
                {"num_hidden_layers", 2},
                {"num_attention_heads", 2},
                {"architectures", {"LlamaForCausalLM"}}};
  const ModelConfig c = Parse(dense);
  CHECK_FALSE(c.is_moe);
  CHECK(c.num_experts == 1);
  CHECK(c.size_experts[1] == std::vector<int>{40});
}

TEST_CASE("bad configs name the key and what is wrong", "[config][bad-input]") {
  auto with = [](const char* key, json value) {
    json j = Released();
    j[key] = std::move(value);
    return j;
  };
  CHECK_THROWS_WITH(Parse(with("gate_type", "SwitchBalancedGate")),
                    Contains("config.json: gate_type is 'SwitchBalancedGate'"));
  CHECK_THROWS_WITH(Parse(with("gate_network", "conv")), Contains("gate_network is 'conv'"));
  CHECK_THROWS_WITH(Parse(with("calculator_type", "SwitchDropTokenCalculator")),
                    Contains("calculator_type"));
  CHECK_THROWS_WITH(Parse(with("hidden_act", "gelu")), Contains("hidden_act is 'gelu'"));
  CHECK_THROWS_WITH(Parse(with("rope_scaling", {{"type", "yarn"}, {"factor", 2.0}})),
                    Contains("rope_scaling.type is 'yarn'"));
  CHECK_THROWS_WITH(Parse(with("rope_scaling", {{"type", "linear"}, {"factor", 0.5}})),
                    Contains("rope_scaling.factor must be > 1"));
  CHECK_THROWS_WITH(Parse(with("num_selects", 9)), Contains("num_selects is 9"));
  CHECK_THROWS_WITH(Parse(with("score_scale_factor", {1.0, 2.0})),
                    Contains("score_scale_factor has 2 entries, expected num_hidden_layers = 32"));
  CHECK_THROWS_WITH(Parse(with("num_key_value_heads", 5)), Contains("num_key_value_heads 5"));
  CHECK_THROWS_WITH(Parse(with("model_type", "gpt_neox")), Contains("model_type is 'gpt_neox'"));
  // A LLaMA-MoE config relabelled as another family still names LLaMA-MoE's router keys.
  CHECK_THROWS_WITH(
      Parse(with("model_type", "mixtral")),
      Contains("num_selects belongs to llama_moe configs, not to model_type 'mixtral'"));
  CHECK_THROWS_WITH(Parse(with("architectures", {"LlamaMoEForTokenClassification"})),
                    Contains("names class 'LlamaMoEForTokenClassification'"));
  CHECK_THROWS_WITH(Parse(with("hidden_size", "4096")), Contains("hidden_size must be an integer"));

  json uneven = Released();
  uneven["size_experts"][3][0] = 1368;
  CHECK_THROWS_WITH(Parse(uneven),
                    Contains("size_experts[3] sums to 11000, expected intermediate_size 11008"));

  json missing = Released();
  missing.erase("num_experts");
  CHECK_THROWS_WITH(Parse(missing), Contains("num_experts is missing"));
}

TEST_CASE("a config file that is not JSON", "[config][bad-input]") {
  const auto dir = TempDir("config");
  std::ofstream(dir / "config.json") << "{\"model_type\": ";
  CHECK_THROWS_WITH(ModelConfig::FromFile(dir / "config.json"), Contains("is not valid JSON"));
  CHECK_THROWS_WITH(ModelConfig::FromFile(dir / "absent.json"), Contains("does not exist"));
}

TEST_CASE("config integers are range-checked and numbers must fit a float", "[config][bad-input]") {
  auto with = [](const char* key, json value) {
    json j = Released();
    j[key] = std::move(value);
    return j;
  };
  // 2^32 + 8 used to wrap to 8, 2^40 to 0.
  CHECK_THROWS_WITH(Parse(with("num_experts", 4294967304LL)),
                    Contains("config.json: num_experts must be an integer in [1, 65536], got "
                             "4294967304"));
  CHECK_THROWS_WITH(Parse(with("vocab_size", int64_t{1} << 40)),
                    Contains("vocab_size must be an integer") && Contains("1099511627776"));
  CHECK_THROWS_WITH(Parse(with("hidden_size", uint64_t{18446744073709551615ULL})),
                    Contains("hidden_size must be an integer") && Contains("18446744073709551615"));
  // Floats where an integer is expected: 1.5 used to become 1.
  CHECK_THROWS_WITH(Parse(with("num_selects", 1.5)),
                    Contains("num_selects must be an integer") && Contains("1.5"));
  CHECK_THROWS_WITH(Parse(with("num_hidden_layers", 1000000)),
                    Contains("num_hidden_layers must be an integer in [1, 4096]"));
  CHECK_THROWS_WITH(Parse(with("num_labels", 2147483647)),
                    Contains("num_labels must be an integer in [0, 1048576]"));
  json sizes = Released();
  sizes["size_experts"][0][0] = 4294967297LL;  // wrapped to 1 before
  CHECK_THROWS_WITH(Parse(sizes), Contains("size_experts[0] must be an integer in [1, "));
  // Floats that overflow a float32 used to become inf.
  CHECK_THROWS_WITH(Parse(with("rms_norm_eps", 1e39)),
                    Contains("rms_norm_eps is 1e+39, outside the range of a 32-bit float"));
  CHECK_THROWS_WITH(Parse(with("score_scale_factor", 1e39)), Contains("score_scale_factor is"));
  CHECK_THROWS_WITH(Parse(with("score_scale_factor", -1.0)),
                    Contains("score_scale_factor must be in [0"));
  CHECK_THROWS_WITH(Parse(with("rope_scaling", {{"type", "linear"}, {"factor", 1e300}})),
                    Contains("rope_scaling.factor is 1e+300"));
  CHECK_THROWS_WITH(Parse(with("rope_scaling", {{"type", 3}, {"factor", 2.0}})),
                    Contains("rope_scaling.type must be a string"));
}

TEST_CASE("config files: folders, trailing content and huge values name the file",
          "[config][bad-input]") {
  const auto dir = TempDir("config_files");
  // A folder where the file should be: no stream error, the path and what is wrong.
  std::filesystem::create_directories(dir / "folder" / "config.json");
  CHECK_THROWS_WITH(ModelConfig::FromFile(dir / "folder" / "config.json"),
                    Contains("config.json: is a folder"));
  // Trailing content after the object (a stream read used to stop after the first value).
  std::ofstream(dir / "trailing.json") << Released().dump() << " {\"x\": 1}";
  CHECK_THROWS_WITH(ModelConfig::FromFile(dir / "trailing.json"),
                    Contains("trailing.json: is not valid JSON"));
  // A wrong type names the file and the key, not "[json.exception.type_error.302]".
  json wrong = Released();
  wrong["rope_scaling"] = {{"type", "linear"}, {"factor", "two"}};
  std::ofstream(dir / "wrong.json") << wrong.dump();
  CHECK_THROWS_WITH(ModelConfig::FromFile(dir / "wrong.json"),
                    Contains("wrong.json: rope_scaling.factor must be a number"));
  // An unterminated 1 MiB string: the message quotes a clipped piece of it, not all of it.
  std::ofstream(dir / "unterminated.json") << "{\"model_type\": \"" << std::string(1 << 20, 'x');
  try {
    ModelConfig::FromFile(dir / "unterminated.json");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains("unterminated.json: is not valid JSON"));
    CHECK(std::string(e.what()).size() < 1000);
  }
  // A 1 MiB string where a number belongs is clipped as well.
  try {
    Parse([] {
      json j = Released();
      j["hidden_size"] = std::string(1 << 20, 'y');
      return j;
    }());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains("hidden_size must be an integer") && Contains("bytes)"));
    CHECK(std::string(e.what()).size() < 1000);
  }
}
