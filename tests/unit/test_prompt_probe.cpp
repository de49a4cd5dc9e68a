// analysis/run/prompt_probe.h: one forward pass of a prompt with its routing and next-token
// predictions, on the tiny fixture model (2 layers, 8 experts, top-2).
#include <algorithm>

#include <catch2/catch.hpp>

#include "analysis/run/prompt_probe.h"
#include "core/error.h"
#include "test_paths.h"

using namespace moe;

namespace {

const LoadedModel& Tiny() {
  static const LoadedModel m = LoadModel(FixtureDir() / "tiny_moe");
  return m;
}

constexpr const char* kPrompt = "The quick brown fox jumps over the lazy dog.";

}  // namespace

TEST_CASE("prompt probe: tokens, top-k per layer and sorted next-token probabilities",
          "[prompt_probe]") {
  const LoadedModel& m = Tiny();
  const PromptProbe p = Probe(m, kPrompt, nullptr, 5);
  const std::vector<int32_t> ids = m.tokenizer->Encode(kPrompt);
  CHECK(p.ids == ids);
  REQUIRE(p.pieces.size() == ids.size());
  CHECK(p.pieces[1] == m.tokenizer->Piece(ids[1]));
  const int L = m.config().num_hidden_layers, K = m.config().num_selects;
  const int E = m.config().num_experts;
  CHECK(p.layers == L);
  CHECK(p.kmax == K);
  REQUIRE(p.topk_ids.size() == ids.size() * L * K);
  for (int64_t t = 0; t < p.size(); ++t)
    for (int l = 0; l < L; ++l) {
      const size_t r = p.Row(t, l);
      for (int j = 0; j < K; ++j) {
        CHECK(p.topk_ids[r + j] >= 0);
        CHECK(p.topk_ids[r + j] < E);
        CHECK(p.topk_weights[r + j] > 0);
      }
      CHECK(p.topk_ids[r] != p.topk_ids[r + 1]);          // distinct experts
      CHECK(p.topk_weights[r] >= p.topk_weights[r + 1]);  // descending weight
    }
  REQUIRE(p.next.size() == 5);
  double sum = 0;
  for (size_t i = 0; i < p.next.size(); ++i) {
    sum += p.next[i].probability;
    CHECK(p.next[i].probability > 0);
    CHECK(p.next[i].piece == m.tokenizer->Piece(p.next[i].id));
    if (i > 0) CHECK(p.next[i].probability <= p.next[i - 1].probability);
  }
  CHECK(sum <= 1.0 + 1e-9);
  // Deterministic: the same prompt probes the same way.
  const PromptProbe again = Probe(m, kPrompt, nullptr, 5);
  CHECK(again.topk_ids == p.topk_ids);
  CHECK(again.next[0].id == p.next[0].id);
}

TEST_CASE("prompt probe: an expert disabled with reroute leaves every token's top-k",
          "[prompt_probe]") {
  const LoadedModel& m = Tiny();
  const PromptProbe base = Probe(m, kPrompt, nullptr, 5);
  const int layer = 1;
  const int32_t expert = base.topk_ids[base.Row(1, layer)];  // in use: the 2nd token's first
  RoutingPolicy policy;
  policy.mode = DisableMode::kReroute;
  policy.layers.resize(static_cast<size_t>(m.config().num_hidden_layers));
  policy.layers[layer].disabled = {expert};
  const PromptProbe p = Probe(m, kPrompt, &policy, 5);
  REQUIRE(p.size() == base.size());
  for (int64_t t = 0; t < p.size(); ++t) {
    const auto row = p.topk_ids.begin() + static_cast<std::ptrdiff_t>(p.Row(t, layer));
    CHECK(std::find(row, row + p.kmax, expert) == row + p.kmax);
    CHECK(*row >= 0);
  }
  // Layer 0 comes before the intervention and routes as before.
  for (int64_t t = 0; t < p.size(); ++t)
    for (int j = 0; j < p.kmax; ++j)
      CHECK(p.topk_ids[p.Row(t, 0) + j] == base.topk_ids[base.Row(t, 0) + j]);
}

TEST_CASE("prompt probe: an empty prompt predicts after BOS; a bad policy is an Error",
          "[prompt_probe]") {
  const LoadedModel& m = Tiny();
  const PromptProbe p = Probe(m, "", nullptr, 3);
  CHECK(p.size() == 1);
  CHECK(p.next.size() == 3);
  RoutingPolicy bad;
  bad.layers.resize(static_cast<size_t>(m.config().num_hidden_layers));
  bad.layers[0].disabled = {99};
  CHECK_THROWS_AS(Probe(m, "x", &bad, 3), Error);
}
