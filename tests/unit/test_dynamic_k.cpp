// Dynamic-k routing (core/dynamic_k.h): each rule against a brute-force reference written from its
// definition on random logits, for the three router recipes; a threshold that keeps everything
// equals top-k bit for bit in a whole forward pass; hooks see the shorter rows padded with -1.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "analysis/policy/policy_json.h"
#include "core/config.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "core/moe_layer.h"
#include "core/routing_policy.h"
#include "test_paths.h"

using namespace moe;
using Catch::Matchers::Contains;

namespace {

constexpr int kExperts = 8, kTopK = 4;

ModelConfig Recipe(RouterScore score, bool renormalize) {
  ModelConfig c;
  c.model_type = "llama_moe";
  c.vocab_size = 10;
  c.num_hidden_layers = 1;
  c.num_experts = kExperts;
  c.num_selects = kTopK;
  c.router_score = score;
  c.gate_use_softmax = true;
  c.renormalize = renormalize;
  c.multiply_gate_scores = true;
  c.score_scale_factor = {1.0f};
  return c;
}

struct Rule {
  float threshold = 0, beta = 0, p = 0;
  int k_min = 1;
};

// q over all E by the definition: softmax of the logits, or the router's scores.
std::vector<double> BruteQ(const ModelConfig& c, const std::vector<float>& z) {
  std::vector<double> q(z.begin(), z.end());
  if (c.router_score == RouterScore::kSigmoid) {
    for (double& x : q) x = 1 / (1 + std::exp(-x));
    return q;
  }
  const double top = *std::max_element(q.begin(), q.end());
  double sum = 0;
  for (double& x : q) sum += (x = std::exp(x - top));
  for (double& x : q) x /= sum;
  return q;
}

// The experts a token runs, from the definitions: rank by q (no selection bias here, so q's
// order is the selection order), take k, then each rule in turn.
std::vector<int32_t> BruteKept(const ModelConfig& c, const std::vector<float>& z, const Rule& r) {
  const std::vector<double> q = BruteQ(c, z);
  std::vector<int32_t> rank(kExperts);
  std::iota(rank.begin(), rank.end(), 0);
  std::stable_sort(rank.begin(), rank.end(), [&](int a, int b) { return q[a] > q[b]; });
  rank.resize(kTopK);
  std::vector<int32_t> kept;
  for (int i = 0; i < kTopK; ++i) {
    bool all_above = true;  // "while": every selection up to i passes
    for (int j = r.k_min; j <= i; ++j)
      all_above = all_above && q[rank[j]] >= r.threshold * q[rank[0]];
    if (r.threshold == 0 || i < r.k_min || all_above) kept.push_back(rank[i]);
  }
  if (r.beta > 0)
    std::erase_if(kept, [&](int32_t e) { return e != rank[0] && q[e] < r.beta * q[rank[0]]; });
  if (r.p > 0) {
    const double total = std::accumulate(q.begin(), q.end(), 0.0);
    for (size_t m = 1; m <= kept.size(); ++m) {
      double mass = 0;
      for (size_t j = 0; j < m; ++j) mass += q[kept[j]] / total;
      if (mass >= r.p) {
        kept.resize(m);
        break;
      }
    }
  }
  return kept;
}

// The recipe's weights on the kept experts, in double.
std::vector<double> BruteWeights(const ModelConfig& c, const std::vector<float>& z,
                                 const std::vector<int32_t>& kept) {
  std::vector<double> w;
  if (c.router_score == RouterScore::kLogits) {
    double sum = 0;
    for (int32_t e : kept) sum += std::exp(static_cast<double>(z[e]));
    for (int32_t e : kept) w.push_back(std::exp(static_cast<double>(z[e])) / sum);
    return w;
  }
  const std::vector<double> q = BruteQ(c, z);
  double sum = 0;
  for (int32_t e : kept) sum += q[e];
  for (int32_t e : kept) w.push_back(c.renormalize ? q[e] / sum : q[e]);
  return w;
}

RoutingPolicy PolicyOf(const ModelConfig& c, const Rule& r) {
  RoutingPolicy p;
  if (r.threshold > 0) p.SetThreshold(-1, r.threshold, r.k_min, 1);
  if (r.beta > 0) p.SetSkipBeta(-1, r.beta, 1);
  if (r.p > 0) p.SetTopP(-1, r.p, 1);
  p.Validate(c);
  return p;
}

struct OneToken {
  int32_t sequence = 0, token_id = 3, position = 0, document = -1;
  uint8_t real = 1;
  TokenSpan span{1, &sequence, &token_id, &position, &document, &real};
};

// Every rule and recipe on `tokens` random logit rows: the engine's executed experts (as a set,
// since they are recorded in weight order) and weights equal the brute force's.
void CheckAgainstBruteForce(const ModelConfig& c, const Rule& rule, int tokens) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const RoutingPolicy policy = PolicyOf(c, rule);
  OneToken token;
  int shorter = 0;
  for (int t = 0; t < tokens; ++t) {
    std::vector<float> z(kExperts);
    for (float& x : z) x = normal(rng);
    const std::vector<int32_t> want = BruteKept(c, z, rule);
    const std::vector<double> want_w = BruteWeights(c, z, want);
    const Routing r = SelectExperts(c, 0, z, token.span, &policy);
    REQUIRE(r.k == kTopK);
    std::vector<int32_t> got;
    for (int j = 0; j < r.k; ++j)
      if (r.ids[j] >= 0) got.push_back(r.ids[j]);
    // Executed ids first, -1 pads after.
    for (int j = static_cast<int>(got.size()); j < r.k; ++j) CHECK(r.ids[j] == -1);
    std::vector<int32_t> got_sorted = got, want_sorted = want;
    std::sort(got_sorted.begin(), got_sorted.end());
    std::sort(want_sorted.begin(), want_sorted.end());
    INFO("token " << t);
    REQUIRE(got_sorted == want_sorted);
    for (size_t j = 0; j < got.size(); ++j) {
      const size_t at =
          static_cast<size_t>(std::find(want.begin(), want.end(), got[j]) - want.begin());
      CHECK(r.weights[j] == Approx(want_w[at]).epsilon(1e-5).margin(1e-7));
    }
    shorter += static_cast<int>(got.size()) < kTopK;
  }
  CHECK(shorter > 0);  // the rule did something on these logits
}

}  // namespace

TEST_CASE("dynamic k: each rule equals its brute-force definition on random logits",
          "[policy][dynamic-k]") {
  for (const auto& [score, renorm] :
       {std::pair{RouterScore::kLogits, false}, std::pair{RouterScore::kSoftmax, true},
        std::pair{RouterScore::kSoftmax, false}, std::pair{RouterScore::kSigmoid, true}}) {
    const ModelConfig c = Recipe(score, renorm);
    INFO("router_score " << static_cast<int>(score) << " renormalize " << renorm);
    CheckAgainstBruteForce(c, {.threshold = 0.3f}, 200);
    CheckAgainstBruteForce(c, {.threshold = 0.2f, .k_min = 2}, 200);
    CheckAgainstBruteForce(c, {.beta = 0.4f}, 200);
    CheckAgainstBruteForce(c, {.p = 0.6f}, 200);
    CheckAgainstBruteForce(c, {.threshold = 0.1f, .beta = 0.3f, .p = 0.8f}, 200);
  }
}

TEST_CASE("dynamic k: a threshold every selection passes equals top-k bit for bit",
          "[policy][dynamic-k]") {
  const LoadedModel m = LoadModel(FixtureDir() / "tiny_moe");
  const ModelConfig& c = m.config();
  const int L = c.num_hidden_layers;
  const Batch batch = Batch::FromRows({{1, 5, 9, 2, 7, 3, 4, 8}, {2, 6, 3, 3, 1, 0, 0, 0}},
                                      {{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0}});
  const std::vector<float> base = m.model->Forward(batch);
  // t = 0 is no rule at all (the policy is empty); the smallest positive t runs the rule, and
  // every softmax probability of a top-k expert is above it.
  RoutingPolicy zero;
  zero.SetThreshold(-1, 0.0f, 1, L);
  CHECK(zero.empty());
  RoutingPolicy tiny;
  tiny.SetThreshold(-1, 1e-30f, 1, L);
  tiny.Validate(c);
  REQUIRE_FALSE(tiny.empty());
  const std::vector<float> got = m.model->Forward(batch, nullptr, &tiny);
  REQUIRE(got.size() == base.size());
  CHECK(std::memcmp(got.data(), base.data(), sizeof(float) * got.size()) == 0);
  // top-p = 0 is off too; skip_beta tiny keeps every selection as well.
  RoutingPolicy beta;
  beta.SetSkipBeta(-1, 1e-30f, L);
  const std::vector<float> got_beta = m.model->Forward(batch, nullptr, &beta);
  CHECK(std::memcmp(got_beta.data(), base.data(), sizeof(float) * got.size()) == 0);
}

namespace {

struct IdsCapture : RoutingObserver {
  std::vector<int32_t> ids;
  int k = 0;
  std::vector<HookRequest> Requests() const override { return {{HookSite::kTopkIds, 0}}; }
  void OnEvent(const HookEvent& e) override {
    ids.assign(e.ids, e.ids + e.rows * e.cols);
    k = static_cast<int>(e.cols);
  }
};

}  // namespace

TEST_CASE("dynamic k: hooks see the experts executed, -1 after them, and the output changes",
          "[policy][dynamic-k]") {
  const LoadedModel m = LoadModel(FixtureDir() / "tiny_moe");
  const ModelConfig& c = m.config();
  const Batch batch = Batch::Single({1, 5, 9, 2, 7, 3, 4, 8, 6, 2, 2, 5});
  RoutingPolicy p;
  p.SetThreshold(-1, 0.9f, 1, c.num_hidden_layers);
  p.Validate(c);
  IdsCapture capture;
  std::vector<float> got;
  {
    const HookGuard guard = m.model->hooks().Add(&capture);
    got = m.model->Forward(batch, nullptr, &p);
  }
  REQUIRE(capture.k == c.num_selects);
  int shorter = 0;
  for (int64_t t = 0; t < batch.tokens(); ++t) {
    const int32_t* row = capture.ids.data() + t * capture.k;
    CHECK(row[0] >= 0);
    int n = 0;
    while (n < capture.k && row[n] >= 0) ++n;
    for (int j = n; j < capture.k; ++j) CHECK(row[j] == -1);
    shorter += n < capture.k;
  }
  CHECK(shorter > 0);
  const std::vector<float> base = m.model->Forward(batch);
  CHECK(std::memcmp(got.data(), base.data(), sizeof(float) * got.size()) != 0);
}

TEST_CASE("dynamic k: JSON keys round-trip and values out of range name the field",
          "[policy][dynamic-k][bad-input]") {
  const ModelConfig c = Recipe(RouterScore::kLogits, false);
  const RoutingPolicy p = PolicyFromJson(
      nlohmann::json::parse(
          R"({"threshold": {"*": 0.25}, "threshold_k_min": {"0": 2}, "skip_beta": {"0": 0.5},
              "top_p": {"*": 0.9}})"),
      c, "p.json");
  p.Validate(c);
  REQUIRE(p.layers.size() == 1);
  CHECK(p.layers[0].threshold == 0.25f);
  CHECK(p.layers[0].threshold_k_min == 2);
  CHECK(p.layers[0].skip_beta == 0.5f);
  CHECK(p.layers[0].top_p == 0.9f);
  const RoutingPolicy back = PolicyFromJson(PolicyToJson(p), c, "round trip");
  CHECK(PolicyToJson(back) == PolicyToJson(p));
  auto bad = [&](const std::string& text, const std::string& message) {
    INFO(text);
    CHECK_THROWS_WITH(PolicyFromJson(nlohmann::json::parse(text), c, "p.json").Validate(c),
                      Contains(message));
  };
  bad(R"({"threshold": {"0": 1.5}})", "threshold");
  bad(R"({"top_p": {"0": -0.1}})", "top_p");
  bad(R"({"skip_beta": {"0": 2}})", "skip_beta");
  bad(R"({"threshold": {"0": 0.5}, "threshold_k_min": {"0": 5}})", "threshold_k_min 5");
  bad(R"({"route_table": {}})", "route_table");
}
