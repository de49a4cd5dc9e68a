// Interventions on routing (core/routing_policy.h), worked out by hand on one token with
// logits [1, 3, 2, 0] over 4 experts, top-2, softmax over the selected logits.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

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

ModelConfig FourExperts() {
  ModelConfig c;
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
  const ModelConfig c = FourExperts();
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
  const ModelConfig c = FourExperts();
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
  const ModelConfig c = FourExperts();
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

namespace {

// Tokens 0..n-1 of document `doc`, all with the logits [1, 3, 2, 0] (ranking 1, 2, 0, 3), routed
// in one span; token t has position t and token id t % 10.
struct ManyTokens {
  std::vector<int32_t> sequence, token_id, position, document;
  std::vector<uint8_t> real;
  TokenSpan span;
  ManyTokens(int n, int32_t doc, int32_t first_position = 0) {
    for (int t = 0; t < n; ++t) {
      sequence.push_back(t % 3);
      token_id.push_back(t % 10);
      position.push_back(first_position + t);
      document.push_back(doc);
      real.push_back(1);
    }
    span = {n, sequence.data(), token_id.data(), position.data(), document.data(), real.data()};
  }
  Routing Route(const RoutingPolicy* policy, int layer = 0) const {
    std::vector<float> logits;
    for (int64_t t = 0; t < span.count; ++t) logits.insert(logits.end(), {1, 3, 2, 0});
    return SelectExperts(FourExperts(), layer, logits, span, policy);
  }
};

std::vector<int32_t> Row(const Routing& r, int64_t t) {
  return {r.ids.begin() + t * r.k, r.ids.begin() + (t + 1) * r.k};
}

}  // namespace

TEST_CASE("random-r disables r of each token's k + r best experts, drawn per token",
          "[policy][random-r]") {
  const ManyTokens tokens(300, 5);
  const RoutingPolicy p = Policy(R"({"random_r": {"*": 1}, "random_r_seed": {"*": 11}})");
  const Routing r = tokens.Route(&p);
  REQUIRE(r.k == 2);
  // The candidates are the top 3 (1, 2, 0); each token runs 2 of them, in logit order, and the
  // one left out is the rank RandomRRanks draws for it.
  std::map<int32_t, int> left_out;
  const std::vector<int32_t> top3 = {1, 2, 0};
  for (int64_t t = 0; t < 300; ++t) {
    const std::vector<int> ranks = RandomRRanks(11, 0, 5, static_cast<int32_t>(t), t % 10, 1, 3);
    REQUIRE(ranks.size() == 1);
    std::vector<int32_t> want;
    for (int i = 0; i < 3; ++i)
      if (i != ranks[0]) want.push_back(top3[static_cast<size_t>(i)]);
    CHECK(Row(r, t) == want);
    ++left_out[top3[static_cast<size_t>(ranks[0])]];
  }
  // Uniform over the three candidates (expected 100 each), so not always the best one.
  for (int32_t e : top3) {
    INFO("expert " << e << " left out " << left_out[e] << " times");
    CHECK(left_out[e] > 60);
    CHECK(left_out[e] < 140);
  }
  CHECK(left_out.count(3) == 0);

  // r = 2: two of the 4 candidates left, in logit order, every pair of them occurring.
  const RoutingPolicy p2 = Policy(R"({"random_r": {"0": 2}})");
  const Routing r2 = tokens.Route(&p2);
  std::set<std::vector<int32_t>> pairs;
  for (int64_t t = 0; t < 300; ++t) {
    const std::vector<int32_t> row = Row(r2, t);
    REQUIRE(row[0] >= 0);
    REQUIRE(row[1] >= 0);
    CHECK(row[0] != row[1]);
    const std::vector<int32_t> order = {1, 2, 0, 3};
    CHECK(std::find(order.begin(), order.end(), row[0]) <
          std::find(order.begin(), order.end(), row[1]));
    pairs.insert(row);
  }
  CHECK(pairs.size() == 6);  // C(4, 2)
  // Layer 1 has no random-r in p2.
  CHECK(Row(tokens.Route(&p2, 1), 0) == std::vector<int32_t>{1, 2});

  // After top-r: top_r 1 skips expert 1, random_r 1 leaves out one of 2, 0, 3.
  const RoutingPolicy both = Policy(R"({"top_r": {"0": 1}, "random_r": {"0": 1}})");
  const Routing rb = tokens.Route(&both);
  for (int64_t t = 0; t < 50; ++t) {
    const std::vector<int32_t> row = Row(rb, t);
    CHECK(std::find(row.begin(), row.end(), 1) == row.end());
    const std::vector<int> ranks = RandomRRanks(0, 0, 5, static_cast<int32_t>(t), t % 10, 1, 3);
    std::vector<int32_t> want;
    for (int i = 0; i < 3; ++i)
      if (i != ranks[0]) want.push_back(std::vector<int32_t>{2, 0, 3}[static_cast<size_t>(i)]);
    CHECK(row == want);
  }

  // Re-routed experts are not candidates: with expert 1 disabled, the pool is 2, 0, 3.
  const RoutingPolicy rerouted =
      Policy(R"({"disable": [[0, 1]], "random_r": {"0": 1}, "random_r_seed": {"0": 11}})");
  const Routing rr = tokens.Route(&rerouted);
  for (int64_t t = 0; t < 50; ++t) {
    const std::vector<int> ranks = RandomRRanks(11, 0, 5, static_cast<int32_t>(t), t % 10, 1, 3);
    std::vector<int32_t> want;
    for (int i = 0; i < 3; ++i)
      if (i != ranks[0]) want.push_back(std::vector<int32_t>{2, 0, 3}[static_cast<size_t>(i)]);
    CHECK(Row(rr, t) == want);
  }
}

TEST_CASE("random-r draws are fixed by seed, layer and token, not by the batch",
          "[policy][random-r]") {
  const ManyTokens tokens(200, 3);
  const RoutingPolicy a = Policy(R"({"random_r": {"*": 1}, "random_r_seed": {"*": 7}})");
  const RoutingPolicy b = Policy(R"({"random_r": {"*": 1}, "random_r_seed": {"*": 8}})");
  const Routing ra = tokens.Route(&a);
  CHECK(tokens.Route(&a).ids == ra.ids);     // deterministic
  CHECK(tokens.Route(&b).ids != ra.ids);     // another seed draws otherwise
  CHECK(tokens.Route(&a, 1).ids != ra.ids);  // and so does another layer
  // Each token routed alone (another span, another batch row) draws what it drew in the span.
  for (int64_t t = 0; t < 200; t += 17) {
    ManyTokens alone(1, 3, static_cast<int32_t>(t));
    alone.token_id[0] = static_cast<int32_t>(t % 10);
    alone.sequence[0] = 9;
    CHECK(Row(alone.Route(&a), 0) == Row(ra, t));
  }
  // Another document draws otherwise.
  CHECK(ManyTokens(200, 4).Route(&a).ids != ra.ids);
  // The draw itself: r distinct ranks of [0, pool), the same for the same key.
  for (int pool = 1; pool <= 8; ++pool)
    for (int r = 0; r <= pool; ++r) {
      std::vector<int> ranks = RandomRRanks(3, 1, 2, 9, 4, r, pool);
      CHECK(ranks == RandomRRanks(3, 1, 2, 9, 4, r, pool));
      REQUIRE(static_cast<int>(ranks.size()) == r);
      std::sort(ranks.begin(), ranks.end());
      CHECK(std::unique(ranks.begin(), ranks.end()) == ranks.end());
      for (int x : ranks) CHECK((x >= 0 && x < pool));
    }
  // Pinned values (tests/python/check_random_r.py implements the same hash).
  CHECK(RandomRRanks(0, 0, -1, 0, 0, 2, 4) == std::vector<int>{0, 2});
  CHECK(RandomRRanks(11, 0, 5, 3, 3, 1, 3) == std::vector<int>{0});
  CHECK(RandomRRanks(7, 1, 2, 9, 4, 3, 8) == std::vector<int>{5, 3, 2});
  CHECK(RandomRRanks(9223372036854775807ull, 5, 100, 1000, 31999, 4, 10) ==
        std::vector<int>{4, 0, 8, 5});
}

TEST_CASE("random-r: validation, flags and JSON round trip", "[policy][random-r][bad-input]") {
  const ModelConfig c = FourExperts();
  const int L = c.num_hidden_layers;
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"0": 4}})"),
                    Contains("policy layer 0: random_r 4 is out of range (0..3)"));
  CHECK_THROWS_WITH(Policy(R"({"top_r": {"1": 2}, "random_r": {"1": 2}})"),
                    Contains("policy layer 1: random_r 2 with top_r 2 leaves no expert"));
  CHECK_THROWS_WITH(Policy(R"({"disable": [[0, 0], [0, 1]], "random_r": {"0": 2}})"),
                    Contains("random_r 2 leaves no expert to route to"));
  CHECK_NOTHROW(Policy(R"({"mode": "drop", "disable": [[0, 0], [0, 1]], "random_r": {"0": 2}})"));
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"0": -1}})"), Contains("random_r[0] must be"));
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"0": 1.5}})"), Contains("random_r[0] must be"));
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"0": 1}, "random_r_seed": {"0": -3}})"),
                    Contains("random_r_seed[0] must be an integer"));
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"0": 1}, "random_r_seed": 3})"),
                    Contains("random_r_seed must be an object"));
  CHECK_THROWS_WITH(Policy(R"({"random_r": {"9": 1}})"), Contains("layer 9 is out of range"));
  RoutingPolicy built;
  built.SetRandomR(0, 1, uint64_t{1} << 63, L);
  CHECK_THROWS_WITH(built.Validate(c), Contains("random_r_seed 9223372036854775808 is out of"));
  built.SetRandomR(0, -2, 1, L);
  CHECK_THROWS_WITH(built.Validate(c), Contains("random_r -2 is out of range"));

  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "", "0:x", "", c), Contains("--random-r"));
  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "", "0:-1", "", c), Contains("--random-r"));
  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "", "", "5", c),
                    Contains("--random-r-seed") && Contains("without --random-r"));
  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "", "*:1", "seven", c),
                    Contains("--random-r-seed") && Contains("not a number"));
  CHECK_THROWS_WITH(PolicyFromFlags("", "", "", "", "*:1", "-1", c), Contains("--random-r-seed"));
  const RoutingPolicy flags = PolicyFromFlags("", "", "", "0:1", "1:2", "42", c);
  CHECK(flags.layers[1].random_r_disable == 2);
  CHECK(flags.layers[1].random_r_seed == 42);
  CHECK(flags.layers[0].random_r_disable == 0);
  CHECK_FALSE(flags.empty());
  CHECK_FALSE(RoutingPolicy().SetRandomR(1, 1, 0, L).empty());
  const nlohmann::json j = PolicyToJson(flags);
  CHECK(j["random_r"] == nlohmann::json{{"1", 2}});
  CHECK(j["random_r_seed"] == nlohmann::json{{"1", 42}});
  const RoutingPolicy back = PolicyFromJson(j, c, "round trip");
  CHECK(PolicyToJson(back) == j);
  CHECK(back.layers[1].random_r_seed == 42);
  // Per-layer seeds and "*" with an override.
  const RoutingPolicy mixed = PolicyFromJson(
      nlohmann::json::parse(
          R"({"random_r": {"*": 1}, "random_r_seed": {"*": 5, "1": 9223372036854775807}})"),
      c, "p");
  CHECK(mixed.layers[0].random_r_seed == 5);
  CHECK(mixed.layers[1].random_r_seed == 9223372036854775807ull);
  CHECK(PolicyToJson(PolicyFromJson(PolicyToJson(mixed), c, "p")) == PolicyToJson(mixed));
  // Policies without random-r keep their JSON text (no new keys).
  CHECK_FALSE(PolicyToJson(PolicyFromFlags("0:1", "", "", "*:1", c)).contains("random_r"));
  // The policy source: flags, or a file, not both.
  PolicySource source;
  source.random_r = "*:1";
  source.random_r_seed = "3";
  CHECK(source.has_flags());
  CHECK(MakePolicy(source, c).layers[0].random_r_seed == 3);
}
