// Sampling: greedy is argmax, a seed makes sampling repeatable, top-k and top-p restrict it.
#include <catch2/catch.hpp>
#include <set>

#include "core/error.h"
#include "core/sampler.h"

using namespace moe;

TEST_CASE("greedy and seeded sampling", "[sampler]") {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
  Sampler greedy({});
  CHECK(greedy.Sample(logits.data(), 5) == 1);

  auto draw = [&](SamplingOptions o, int n) {
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(s.Sample(logits.data(), 5));
    return out;
  };
  SamplingOptions hot{.temperature = 1.0f, .seed = 42};
  CHECK(draw(hot, 50) == draw(hot, 50));
  hot.seed = 43;
  const std::vector<int32_t> other = draw(hot, 50);
  CHECK(std::set<int32_t>(other.begin(), other.end()).size() > 2);

  // top-k 2 keeps ids 1 and 2 only; top-k 1 is greedy whatever the temperature.
  const std::vector<int32_t> k2 = draw({.temperature = 5.0f, .top_k = 2, .seed = 1}, 200);
  CHECK(std::set<int32_t>(k2.begin(), k2.end()) == std::set<int32_t>{1, 2});
  const std::vector<int32_t> k1 = draw({.temperature = 5.0f, .top_k = 1, .seed = 1}, 20);
  CHECK(std::set<int32_t>(k1.begin(), k1.end()) == std::set<int32_t>{1});
  // A tiny nucleus holds only the most likely token.
  const std::vector<int32_t> p = draw({.temperature = 1.0f, .top_p = 0.05f, .seed = 1}, 20);
  CHECK(std::set<int32_t>(p.begin(), p.end()) == std::set<int32_t>{1});
}

TEST_CASE("sampling options out of range", "[sampler][bad-input]") {
  CHECK_THROWS_AS(Sampler({.temperature = -1.0f}), Error);
  CHECK_THROWS_AS(Sampler({.top_p = 0.0f}), Error);
  CHECK_THROWS_AS(Sampler({.top_k = -2}), Error);
}
