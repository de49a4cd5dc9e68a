// The MoE families beyond LLaMA-MoE v1 (docs/model-families.md): the engine against the PyTorch
// reference written from each family's Hugging Face code (tests/reference/family_reference.py),
// the parameter counts of published configs, and the errors of configs the engine cannot run.
// Regenerate the fixtures with /usr/bin/python3 tests/reference/make_family_fixtures.py.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "analysis/run/trace_runner.h"
#include "analysis/trace/trace_reader.h"
#include "core/config.h"
#include "core/error.h"
#include "core/hooks.h"
#include "core/moe_layer.h"
#include "reference_case.h"
#include "test_paths.h"
#include "trace_test_util.h"

using namespace moe;
using namespace moe::testing;

namespace {

ModelConfig ConfigOf(const char* fixture) {
  return ModelConfig::FromFile(FixtureDir() / fixture / "config.json");
}

nlohmann::json JsonOf(const char* fixture) {
  return ReadJson(FixtureDir() / fixture / "config.json");
}

std::string ErrorOf(const nlohmann::json& j) {
  try {
    ModelConfig::FromJson(j, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every family's fixtures match the PyTorch reference", "[fixtures][families]") {
  // Expected tensors: every layer's activations, routing of MoE layers (routing ids exactly),
  // shared-expert outputs and gates, final hidden states and logits.
  for (const char* name : {"mixtral_window", "mixtral_generation", "llama_moe_v2_scale",
                           "olmoe_clip", "olmoe_norm_bin", "qwen2_moe_shared",
                           "qwen2_moe_sparse_step", "qwen3_moe", "granitemoe", "dots1_router"}) {
    SECTION(name) {
      const int compared = CheckForwardCase(FixtureDir() / name);
      CHECK(compared >= 10);
    }
  }
}

TEST_CASE("greedy generation through a sliding-window KV cache (Mixtral)",
          "[fixtures][families][generation]") {
  CheckGenerationCase(FixtureDir() / "mixtral_generation");
}

TEST_CASE("each family's config becomes the model description", "[families][config]") {
  SECTION("mixtral: softmax over all experts, renormalized, a window on every layer") {
    const ModelConfig c = ConfigOf("mixtral_window");
    CHECK(c.family == Family::kMixtral);
    CHECK(c.router_score == RouterScore::kSoftmax);
    CHECK(c.renormalize);
    CHECK(c.sliding_window == std::vector<int>(c.num_hidden_layers, 5));
    CHECK_FALSE(c.qkv_bias);
  }
  SECTION("olmoe: full-width q/k norm and clip_qkv") {
    const ModelConfig c = ConfigOf("olmoe_clip");
    CHECK(c.qk_norm == QkNorm::kFullWidth);
    CHECK(c.clip_qkv > 0);
    CHECK_FALSE(c.renormalize);
  }
  SECTION("qwen2_moe: dense layers, a gated shared expert, q/k/v biases") {
    const ModelConfig c = ConfigOf("qwen2_moe_shared");
    CHECK(c.moe_layer == std::vector<uint8_t>{1, 0, 1});
    CHECK(c.shared_expert_width == 64);
    CHECK(c.shared_expert_gated);
    CHECK(c.qkv_bias);
    CHECK_FALSE(c.o_bias);
    CHECK(ConfigOf("qwen2_moe_sparse_step").moe_layer == std::vector<uint8_t>{0, 1, 0, 1});
  }
  SECTION("qwen3_moe: per-head q/k norm, heads x head_dim != hidden") {
    const ModelConfig c = ConfigOf("qwen3_moe");
    CHECK(c.qk_norm == QkNorm::kPerHead);
    CHECK(c.query_width() == 96);
    CHECK(c.hidden_size == 64);
  }
  SECTION("granitemoe: multipliers and a logit router") {
    const ModelConfig c = ConfigOf("granitemoe");
    CHECK(c.router_score == RouterScore::kLogits);
    CHECK(c.embedding_multiplier == 12.0f);
    CHECK(c.logits_scaling == 8.0f);
  }
  SECTION("dots1: sigmoid, selection bias, groups, routed scaling, dense first layer") {
    const ModelConfig c = ConfigOf("dots1_router");
    CHECK(c.router_score == RouterScore::kSigmoid);
    CHECK(c.selection_bias);
    CHECK(c.router_groups == 4);
    CHECK(c.router_topk_groups == 2);
    CHECK(c.score_scale_factor[1] == 2.5f);
    CHECK(c.renormalize_epsilon == 1e-20f);
    CHECK(c.moe_layer == std::vector<uint8_t>{0, 1, 1});
    CHECK(c.shared_expert_width == 16);
    CHECK_FALSE(c.shared_expert_gated);
  }
}

TEST_CASE("published configs give the published parameter counts", "[families][config]") {
  struct Published {
    const char* file;
    double total, active;  // active 0: not published
    double active_digit;   // the last digit of the published active size ("3.3B": 0.1e9)
  };
  for (const Published& p : {
           Published{"mistralai__Mixtral-8x7B-v0.1.json", 46.7e9, 12.9e9, 0.1e9},
           Published{"Qwen__Qwen3-30B-A3B.json", 30.5e9, 3.3e9, 0.1e9},
           Published{"ibm-granite__granite-3.0-1b-a400m-base.json", 1.33e9, 0, 0},
           Published{"allenai__OLMoE-1B-7B-0924.reconstructed.json", 6.92e9, 1.28e9, 0.01e9},
           Published{"Qwen__Qwen1.5-MoE-A2.7B.reconstructed.json", 14.3e9, 2.7e9, 0.1e9},
       }) {
    SECTION(p.file) {
      const ModelConfig c = ModelConfig::FromFile(FixtureDir() / "configs" / p.file);
      // Totals within 1 %; active sizes are published with two or three digits (Qwen3's
      // 3.353B is "3.3B"), so within one unit of their last digit.
      CHECK(c.TotalParameters() == Approx(p.total).epsilon(0.01));
      if (p.active > 0) CHECK(c.ActivatedParameters() == Approx(p.active).margin(p.active_digit));
    }
  }
}

TEST_CASE("configs the engine cannot run are refused naming the field", "[families][config]") {
  SECTION("an unsupported architecture") {
    nlohmann::json j = JsonOf("dots1_router");
    j["model_type"] = "deepseek_v3";
    CHECK_THAT(ErrorOf(j), Catch::Contains("model_type") && Catch::Contains("kv_lora_rank"));
    j["model_type"] = "jamba";
    CHECK_THAT(ErrorOf(j), Catch::StartsWith("config.json: model_type is 'jamba'"));
  }
  SECTION("a config mixing families") {
    nlohmann::json j = JsonOf("mixtral_window");
    j["architectures"] = {"OlmoeForCausalLM"};
    CHECK_THAT(ErrorOf(j), Catch::Contains("architectures") && Catch::Contains("mixtral"));
    j = JsonOf("mixtral_window");
    j["n_group"] = 4;
    CHECK_THAT(ErrorOf(j), Catch::Contains("n_group belongs to dots1"));
    j = JsonOf("qwen3_moe");
    j["clip_qkv"] = 8.0;
    CHECK_THAT(ErrorOf(j), Catch::Contains("clip_qkv belongs to olmoe"));
  }
  SECTION("keys without a common default must be given") {
    nlohmann::json j = JsonOf("olmoe_clip");
    j.erase("norm_topk_prob");
    CHECK_THAT(ErrorOf(j), Catch::Contains("norm_topk_prob is missing"));
    j = JsonOf("granitemoe");
    j.erase("logits_scaling");
    CHECK_THAT(ErrorOf(j), Catch::Contains("logits_scaling is missing"));
  }
  SECTION("features the engine does not implement") {
    nlohmann::json j = JsonOf("qwen2_moe_shared");
    j["use_sliding_window"] = true;
    CHECK_THAT(ErrorOf(j), Catch::Contains("use_sliding_window"));
    j = JsonOf("dots1_router");
    j["n_group"] = 3;
    CHECK_THAT(ErrorOf(j), Catch::Contains("n_group 3 does not divide"));
    j = JsonOf("dots1_router");
    j["topk_group"] = 5;
    CHECK_THAT(ErrorOf(j), Catch::Contains("topk_group"));
    j = JsonOf("granitemoe");
    j["residual_multiplier"] = -1.0;
    CHECK_THAT(ErrorOf(j), Catch::Contains("residual_multiplier must be > 0"));
    j = JsonOf("qwen2_moe_shared");
    j["mlp_only_layers"] = {0, 1, 2};
    CHECK_THAT(ErrorOf(j), Catch::Contains("has no MoE layer"));
  }
  SECTION("LLaMA-MoE-v2's keys: the scale factor is read, the rest refused") {
    CHECK(ConfigOf("llama_moe_v2_scale").score_scale_factor ==
          std::vector<float>(ConfigOf("llama_moe_v2_scale").num_hidden_layers, 4.0f));
    CHECK(ConfigOf("mixtral_window").score_scale_factor[0] == 1.0f);
    for (const auto& [key, value, message] :
         {std::tuple{"scale_factor", nlohmann::json(0.0), "scale_factor must be > 0"},
          std::tuple{"num_moe_contract_layers", nlohmann::json(1), "contract layers"},
          std::tuple{"intermediate_size_residual", nlohmann::json(64), "residual MLP"},
          std::tuple{"add_rescale_bias", nlohmann::json(true), "rescale biases"},
          std::tuple{"use_attn_moe", nlohmann::json(true), "attention experts"},
          std::tuple{"moe_type", nlohmann::json("scattermoe"), "modulelist"}}) {
      nlohmann::json j = JsonOf("llama_moe_v2_scale");
      j[key] = value;
      CHECK_THAT(ErrorOf(j),
                 Catch::StartsWith(std::string("config.json: ") + key) && Catch::Contains(message));
    }
    nlohmann::json j = JsonOf("olmoe_clip");
    j["scale_factor"] = 2.0;
    CHECK_THAT(ErrorOf(j), Catch::Contains("scale_factor belongs to mixtral"));
  }
}

TEST_CASE("dense layers carry no routing, and the shared expert can be disabled",
          "[families][hooks]") {
  const LoadedModel m = LoadModel(FixtureDir() / "qwen2_moe_shared");
  const Batch batch = Batch::Single({1, 5, 9, 13, 17, 21});
  const std::vector<OwnedTensor> plain = RecordForward(*m.model, batch, {.activations = true});
  auto find = [](const std::vector<OwnedTensor>& v, const std::string& name) -> const OwnedTensor* {
    for (const OwnedTensor& t : v)
      if (t.name == name) return &t;
    return nullptr;
  };
  CHECK(find(plain, "layers.0.gate_logits") != nullptr);
  CHECK(find(plain, "layers.1.gate_logits") == nullptr);  // mlp_only_layers [1]
  CHECK(find(plain, "layers.1.shared_out") == nullptr);
  REQUIRE(find(plain, "layers.2.shared_gate") != nullptr);

  // Without the shared expert, layer 0's block output is its routed output alone:
  // moe_out(plain) - shared_out(plain).
  RoutingPolicy policy;
  policy.DisableSharedExpert(-1, m.config().num_hidden_layers);
  policy.Validate(m.config());
  const std::vector<OwnedTensor> ablated =
      RecordForward(*m.model, batch, {.activations = true, .policy = &policy});
  const std::vector<float> with = AsFloats(find(plain, "layers.0.moe_out")->view());
  const std::vector<float> shared = AsFloats(find(plain, "layers.0.shared_out")->view());
  const std::vector<float> without = AsFloats(find(ablated, "layers.0.moe_out")->view());
  CHECK(find(ablated, "layers.0.shared_out") == nullptr);
  REQUIRE(with.size() == without.size());
  for (size_t i = 0; i < with.size(); ++i)
    CHECK(without[i] == Approx(with[i] - shared[i]).margin(1e-5));

  const LoadedModel olmoe = LoadModel(FixtureDir() / "olmoe_clip");
  RoutingPolicy none;
  none.DisableSharedExpert(-1, olmoe.config().num_hidden_layers);
  CHECK_THROWS_WITH(none.Validate(olmoe.config()), Catch::Contains("has none"));
  RoutingPolicy dense = RoutingPolicy::Disabling({{1, 0}}, DisableMode::kReroute, 3);
  CHECK_THROWS_WITH(dense.Validate(m.config()), Catch::Contains("dense layer"));
}

TEST_CASE("traces record the shared expert's gate as the forward pass applies it",
          "[families][trace]") {
  // Qwen2-MoE: a sigmoid gate; dots1: an ungated shared expert (weight 1) after a dense layer 0.
  for (const char* family : {"families_e2e/qwen2_moe", "families_e2e/dots1"}) {
    INFO(family);
    const LoadedModel m = LoadModel(FixtureDir() / family);
    const int L = m.config().num_hidden_layers;
    for (const bool disable : {false, true}) {
      RoutingPolicy policy;  // the last layer's shared expert off, or nothing
      if (disable) policy.DisableSharedExpert(L - 1, L);
      const auto path = TempDir(std::string("shared-gate-") + (disable ? "off" : "on")) / "t.h5";
      RunTrace(m, policy, trace_test::TinyOptions(path));
      const TraceReader r(path);
      REQUIRE(r.has_shared_gate());
      // The first document that runs as one window from position 0.
      int64_t d = 0;
      while (d < r.num_documents() && r.Document(d).tokens() > m.config().context_length() / 2) ++d;
      REQUIRE(d < r.num_documents());
      const TraceDocument doc = r.Document(d);
      const TokenRows tokens = r.ReadTokens(doc.token_begin, doc.tokens());
      REQUIRE(tokens.position.front() == 0);
      REQUIRE(tokens.position.back() == doc.tokens() - 1);
      const RoutingRows rows = r.ReadRouting(doc.token_begin, doc.tokens());
      REQUIRE(rows.shared_gate.size() == static_cast<size_t>(doc.tokens() * L));
      const std::vector<OwnedTensor> forward =
          RecordForward(*m.model, Batch::Single(tokens.id), {.activations = true});
      for (int l = 0; l < L; ++l) {
        const std::string name = "layers." + std::to_string(l) + ".shared_gate";
        const OwnedTensor* hooked = nullptr;
        for (const OwnedTensor& t : forward)
          if (t.name == name) hooked = &t;
        const bool ran = m.config().IsMoeLayer(l) && !(disable && l == L - 1);
        REQUIRE((hooked != nullptr) == m.config().IsMoeLayer(l));
        const std::vector<float> gate =
            hooked ? AsFloats(hooked->view()) : std::vector<float>(doc.tokens(), 0.0f);
        for (int64_t t = 0; t < doc.tokens(); ++t) {
          const float recorded = rows.shared_gate[static_cast<size_t>(t * L + l)];
          if (!ran) {
            CHECK(recorded == 0.0f);
          } else {
            CHECK(recorded == Approx(gate[static_cast<size_t>(t)]).margin(1e-6));
            if (m.config().shared_expert_gated) {
              CHECK(recorded > 0.0f);
              CHECK(recorded < 1.0f);
            } else {
              CHECK(recorded == 1.0f);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("group-limited routing keeps the best groups' experts only", "[families][routing]") {
  // 8 experts in 4 groups of 2, keep 2 groups, choose 2: sigmoid scores, no bias.
  ModelConfig c = ConfigOf("dots1_router");
  c.num_experts = 8;
  c.num_selects = 2;
  c.router_groups = 4;
  c.router_topk_groups = 2;
  c.renormalize = false;
  // Expert 0 alone has the highest logit, but group 0's other expert is weak, so groups 1 (2, 3)
  // and 3 (6, 7) win on their top-2 sums and expert 0 is not eligible.
  const std::vector<float> z{3.0f, -4.0f, 2.0f, 2.0f, 0.0f, 0.0f, 1.5f, 1.5f};
  const int32_t id = 0;
  const TokenSpan span{1, &id, &id, &id, nullptr, nullptr};
  const Routing r = SelectExperts(c, 1, z, span, nullptr);
  REQUIRE(r.k == 2);
  CHECK(r.ids[0] == 2);
  CHECK(r.ids[1] == 3);
  CHECK(r.weights[0] == Approx(1.0 / (1.0 + std::exp(-2.0))));
}
