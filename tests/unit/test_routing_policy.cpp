// Interventions on routing (core/routing_policy.h), worked out by hand on one token with
// logits [1, 3, 2, 0] over 4 experts, top-2, softmax over the selected logits.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/policy/policy_source.h"
#include "core/config.h"
#include "core/error.h"
#include "core/moe_layer.h"
#include "core/routing_policy.h"
#include "test_paths.h"

using namespace moe;
using Catch::Matchers::Contains;

namespace {

LlamaMoeConfig FourExperts() {
  LlamaMoeConfig c;
  c.model_type = "llama_moe";
  c.vocab_size = 10;
  c.num_hidden_layers = 2;
  c.num_experts = 4;
  c.num_selects = 2;
  c.gate_use_softmax = true;
  c.multiply_gate_scores = true;
  c.score_scale_factor = {1.5f, 1.5f};
  return c;
}

struct OneToken {
  int32_t sequence = 0, token_id = 7, position = 0, document = -1;
  uint8_t real = 1;
  TokenSpan span{1, &sequence, &token_id, &position, &document, &real};
};

Routing Route(const RoutingPolicy* policy, int layer = 0) {
  static OneToken token;
  return SelectExperts(FourExperts(), layer, {1, 3, 2, 0}, token.span, policy);
}

// Parsed and validated, as a run does before it starts.
RoutingPolicy Policy(const std::string& json_text) {
  RoutingPolicy p = PolicyFromJson(nlohmann::json::parse(json_text), FourExperts(), "test");
  p.Validate(FourExperts());
  return p;
}

// softmax([a, b])[0] = 1 / (1 + e^(b - a))
float Pair(float a, float b) {
  return 1.0f / (1.0f + std::exp(b - a));
}

}  // namespace

TEST_CASE("no policy: top-2 by logit, softmax over the two, times the scale", "[policy]") {
  const Routing r = Route(nullptr);
  REQUIRE(r.k == 2);
  CHECK(r.ids == std::vector<int32_t>{1, 2});
  CHECK(r.weights[0] == Approx(Pair(3, 2)));
  CHECK(r.weights[1] == Approx(1 - Pair(3, 2)));
  CHECK(r.scaled[0] == Approx(1.5f * Pair(3, 2)));
}

TEST_CASE("reroute masks disabled experts before top-k", "[policy]") {
  const RoutingPolicy p = Policy(R"({"mode": "reroute", "disable": [[0, 1]]})");
  const Routing r = Route(&p);
  CHECK(r.ids == std::vector<int32_t>{2, 0});
  CHECK(r.weights[0] == Approx(Pair(2, 1)));
  // Layer 1 is untouched.
  CHECK(Route(&p, 1).ids == std::vector<int32_t>{1, 2});
}

TEST_CASE("drop removes the disabled expert after weighting, renorm rescales", "[policy]") {
  const RoutingPolicy drop = Policy(R"({"mode": "drop", "disable": [[0, 1]]})");
  const Routing r = Route(&drop);
  CHECK(r.ids == std::vector<int32_t>{2, -1});
  CHECK(r.weights[0] == Approx(1 - Pair(3, 2)));
  CHECK(r.weights[1] == 0.0f);
  const RoutingPolicy renorm = Policy(R"({"mode": "drop-renorm", "disable": [[0, 1]]})");
  const Routing rn = Route(&renorm);
  CHECK(rn.ids == std::vector<int32_t>{2, -1});
  CHECK(rn.weights[0] == Approx(1.0f));
}

TEST_CASE("top-r disable skips each token's r best experts", "[policy]") {
  const RoutingPolicy p = Policy(R"({"top_r": {"*": 1}})");
  CHECK(Route(&p).ids == std::vector<int32_t>{2, 0});
  CHECK(Route(&p, 1).ids == std::vector<int32_t>{2, 0});
}

TEST_CASE("k per layer, scale override and forced routes", "[policy]") {
  const RoutingPolicy k1 = Policy(R"({"top_k": {"0": 1}})");
  const Routing r = Route(&k1);
  CHECK(r.k == 1);
  CHECK(r.ids == std::vector<int32_t>{1});
  CHECK(r.weights[0] == Approx(1.0f));

  const RoutingPolicy scale = Policy(R"({"scale_factor": {"0": 4.0}})");
  CHECK(Route(&scale).scaled[0] == Approx(4.0f * Pair(3, 2)));

  // Forced [3, 0]: weights softmax(0, 1), recorded in descending weight.
  const RoutingPolicy forced =
      Policy(R"({"force": [{"layer": 0, "token_id": 7, "experts": [3, 0]}]})");
  const Routing f = Route(&forced);
  CHECK(f.ids == std::vector<int32_t>{0, 3});
  CHECK(f.weights[0] == Approx(Pair(1, 0)));
  const RoutingPolicy other = Policy(R"({"force": [{"token_id": 8, "experts": [3]}]})");
  CHECK(Route(&other).ids == std::vector<int32_t>{1, 2});
}

TEST_CASE("invalid policies are errors naming what is wrong", "[policy]") {
  CHECK_THROWS_WITH(Policy(R"({"disable": [[0, 9]]})"), Contains("expert 9 is out of range"));
  CHECK_THROWS_WITH(Policy(R"({"disable": [[5, 1]]})"), Contains("layer 5 is out of range"));
  CHECK_THROWS_WITH(Policy(R"({"disable": [[0, 0], [0, 1], [0, 2], [0, 3]]})"),
                    Contains("disables all 4 experts"));
  CHECK_THROWS_WITH(Policy(R"({"top_k": {"0": 5}})"),
                    Contains("top_k[0] must be an integer in [1, 4], got 5"));
  CHECK_THROWS_WITH(Policy(R"({"mode": "maybe"})"), Contains("mode is 'maybe'"));
  CHECK_THROWS_WITH(Policy(R"({"force": [{"layer": 0, "experts": [2, 1, 2]}]})"),
                    Contains("force[0]: names expert 2 twice"));
  CHECK_THROWS_WITH(Policy(R"({"disabled": []})"), Contains("unknown key 'disabled'"));
  CHECK_THROWS_AS(PolicyFromFlags("3", "", "", "", FourExperts()), Error);
  const RoutingPolicy unchecked = PolicyFromFlags("1:4", "", "", "", FourExperts());
  CHECK_THROWS_WITH(unchecked.Validate(FourExperts()), Contains("expert 4 is out of range"));
  // The engine's guard: a policy that was never validated cannot index outside the layer.
  CHECK_THROWS_WITH(Route(&unchecked, 1), Contains("expert 4 is out of range"));
}

TEST_CASE("typed builders make the policies the text forms describe", "[policy]") {
  const LlamaMoeConfig c = FourExperts();
  const int L = c.num_hidden_layers;
  const RoutingPolicy built = RoutingPolicy::Disabling({{0, 1}, {1, 3}}, DisableMode::kDrop, L)
                                  .SetTopK(1, 1, L)
                                  .SetTopR(-1, 1, L);
  CHECK_NOTHROW(built.Validate(c));
  const RoutingPolicy flags = PolicyFromFlags("0:1,1:3", "drop", "1:1", "*:1", c);
  CHECK(PolicyToJson(built) == PolicyToJson(flags));
  CHECK(built.layers[0].top_r_disable == 1);
  CHECK(built.layers[1].top_r_disable == 1);
  CHECK(built.layers[0].top_k == 0);
  CHECK(ParseExpertList("*:2", L, "--set").size() == static_cast<size_t>(L));
  CHECK_THROWS_WITH(RoutingPolicy().Disable({L, 0}, L), Contains("layer " + std::to_string(L)));
  CHECK(RoutingPolicy::Disabling({}, DisableMode::kReroute, L).empty());
}

TEST_CASE("flags and JSON describe the same policy", "[policy]") {
  const RoutingPolicy flags = PolicyFromFlags("0:1,1:3", "drop", "1:1", "*:1", FourExperts());
  const RoutingPolicy json = PolicyFromJson(PolicyToJson(flags), FourExperts(), "round trip");
  CHECK(PolicyToJson(json) == PolicyToJson(flags));
  CHECK(json.mode == DisableMode::kDrop);
  CHECK(json.layers[1].disabled == std::vector<int32_t>{3});
  CHECK(json.layers[1].top_k == 1);
  CHECK(json.layers[0].top_r_disable == 1);
  CHECK(json.MaxSelections(FourExperts()) == 2);
}

TEST_CASE("policy numbers are range-checked, never truncated or ignored", "[policy][bad-input]") {
  const LlamaMoeConfig c = FourExperts();
  auto flags_top_k = [&](const std::string& top_k) {
    return PolicyFromFlags("", "", top_k, "", c);
  };
  // k = 0 used to exit 0 and keep k = 2; k above E is refused where it is read.
  CHECK_THROWS_WITH(flags_top_k("0:0"), Contains("--top-k") && Contains("[1, 4], got 0"));
  CHECK_THROWS_WITH(flags_top_k("*:5"), Contains("--top-k") && Contains("[1, 4], got 5"));
  CHECK_THROWS_WITH(flags_top_k("0:1.5"), Contains("--top-k") && Contains("must be an integer"));
  CHECK_THROWS_WITH(flags_top_k("0:1e3"), Contains("must be an integer"));
  CHECK_THROWS_WITH(flags_top_k("0:x"), Contains("not a number"));
  CHECK(flags_top_k("0:1").layers[0].top_k == 1);
  CHECK_THROWS_WITH(PolicyFromFlags("0:4294967297", "", "", "", c),
                    Contains("--disable") && Contains("4294967297"));
  CHECK_THROWS_WITH(PolicyFromFlags("0:-1", "", "", "", c), Contains("--disable"));
  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "0:99999999999", c), Contains("--top-r"));

  auto json_policy = [&](const std::string& text) {
    return PolicyFromJson(nlohmann::json::parse(text), c, "p.json");
  };
  CHECK_THROWS_WITH(json_policy(R"({"disable": [[0, 4294967297]]})"),
                    Contains("p.json: disable[0][1] must be an integer"));
  CHECK_THROWS_WITH(json_policy(R"({"disable": [[0, 1.5]]})"),
                    Contains("disable[0][1] must be an integer") && Contains("1.5"));
  CHECK_THROWS_WITH(json_policy(R"({"disable": [[18446744073709551615, 1]]})"),
                    Contains("layer must be an integer in [0, 2147483647]"));
  CHECK_THROWS_WITH(json_policy(R"({"top_k": {"0": 0}})"), Contains("top_k[0] must be"));
  CHECK_THROWS_WITH(json_policy(R"({"top_k": [1, 2]})"), Contains("top_k must be an object"));
  CHECK_THROWS_WITH(json_policy(R"({"top_r": {"*": 4294967296}})"), Contains("top_r[*] must be"));
  CHECK_THROWS_WITH(json_policy(R"({"scale_factor": {"0": 1e39}})"),
                    Contains("scale_factor[0] is 1e+39, outside the range of a 32-bit float"));
  CHECK_THROWS_WITH(json_policy(R"({"scale_factor": {"0": "big"}})"),
                    Contains("scale_factor[0] must be a number"));
  CHECK_THROWS_WITH(json_policy(R"({"mode": 3})"), Contains("mode must be a string"));
  // A forced route at position -5 used to force every token.
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"position": -5, "experts": [1]}]})"),
                    Contains("force[0].position must be an integer in [0, "));
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"token_id": 1099511627776, "experts": [1]}]})"),
                    Contains("force[0].token_id must be an integer"));
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"layer": 0.5, "experts": [1]}]})"),
                    Contains("force[0].layer must be an integer"));
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"positon": 3, "experts": [1]}]})"),
                    Contains("force[0] has unknown key 'positon'"));
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"experts": [1, 2.5]}]})"),
                    Contains("force[0].experts[1] must be an integer"));
  CHECK_THROWS_WITH(json_policy(R"({"force": [{"layer": 0}]})"),
                    Contains("force[0].experts is missing"));
  // Built in code (the Python module, the app), a negative position is refused by Validate.
  RoutingPolicy built;
  built.forced.push_back({0, -1, -5, {1}});
  CHECK_THROWS_WITH(built.Validate(c), Contains("force[0]: position -5 is negative"));
  CHECK(json_policy(R"({"force": [{"position": 3, "experts": [1]}]})").forced[0].position == 3);
}

TEST_CASE("policy files: trailing content, folders and out-of-range experts name the file",
          "[policy][bad-input]") {
  const LlamaMoeConfig c = FourExperts();
  const auto dir = TempDir("policy_files");
  auto from_file = [&](const std::filesystem::path& path) {
    PolicySource source;
    source.file = path.string();
    return MakePolicy(source, c);
  };
  std::ofstream(dir / "trailing.json") << R"({"mode": "drop"} {"mode": "reroute"})";
  CHECK_THROWS_WITH(from_file(dir / "trailing.json"), Contains("trailing.json: is not valid JSON"));
  CHECK_THROWS_WITH(from_file(dir), Contains(dir.string() + ": is a folder"));
  CHECK_THROWS_WITH(from_file(dir / "absent.json"), Contains("absent.json: does not exist"));
  // A value the model cannot take is reported with the file's name, not only "policy".
  std::ofstream(dir / "e99.json") << R"({"disable": [[0, 99]]})";
  CHECK_THROWS_WITH(from_file(dir / "e99.json"),
                    Contains("e99.json: policy layer 0: expert 99 is out of range (0..3)"));
  std::ofstream(dir / "ok.json") << R"({"mode": "drop", "disable": [[1, 2]]})"
                                 << "\n";
  CHECK(from_file(dir / "ok.json").layers[1].disabled == std::vector<int32_t>{2});
}
