// Seriation (analysis/stats/seriation.h) and the expert-pair rates it is applied to
// (analysis/stats/pair_rates.h), on small matrices whose answers are worked out by hand.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "analysis/stats/pair_rates.h"
#include "analysis/stats/seriation.h"
#include "core/error.h"

using namespace moe;

namespace {

bool IsPermutation(std::vector<int> order, int n) {
  std::sort(order.begin(), order.end());
  std::vector<int> identity(static_cast<size_t>(n));
  std::iota(identity.begin(), identity.end(), 0);
  return order == identity;
}

// Items i and j are alike when they are in the same block of `blocks` (item -> block id).
std::vector<double> BlockSimilarity(const std::vector<int>& blocks) {
  const int n = static_cast<int>(blocks.size());
  std::vector<double> s(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      s[static_cast<size_t>(i) * n + j] = blocks[i] == blocks[j] ? 1.0 : 0.1;
  return s;
}

}  // namespace

TEST_CASE("seriation puts interleaved blocks next to each other", "[seriation]") {
  // Items 0, 2, 4 form one block and 1, 3, 5 another.
  const std::vector<int> blocks = {0, 1, 0, 1, 0, 1};
  const std::vector<int> order = SeriationOrder(BlockSimilarity(blocks), 6);
  REQUIRE(IsPermutation(order, 6));
  int changes = 0;
  for (size_t k = 1; k < order.size(); ++k) changes += blocks[order[k]] != blocks[order[k - 1]];
  CHECK(changes == 1);
  // Deterministic, ties to the lower index: the pair (0, 2) starts, 4 joins, then block 1.
  CHECK(order == std::vector<int>{0, 2, 4, 1, 3, 5});
  CHECK(SeriationOrder(BlockSimilarity(blocks), 6) == order);
}

TEST_CASE("seriation recovers a chain from a shuffled path", "[seriation]") {
  // Items on a line at positions pos[i]; similarity falls with distance. The order must walk
  // the line from one end to the other.
  const std::vector<int> pos = {3, 0, 5, 1, 4, 2};
  const int n = 6;
  std::vector<double> s(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) s[static_cast<size_t>(i) * n + j] = -std::abs(pos[i] - pos[j]);
  const std::vector<int> order = SeriationOrder(s, n);
  REQUIRE(IsPermutation(order, n));
  for (size_t k = 1; k < order.size(); ++k) CHECK(std::abs(pos[order[k]] - pos[order[k - 1]]) == 1);
}

TEST_CASE("seriation of small, NaN and malformed matrices", "[seriation]") {
  CHECK(SeriationOrder({}, 0).empty());
  CHECK(SeriationOrder(std::vector<double>{1.0}, 1) == std::vector<int>{0});
  const double nan = std::nan("");
  CHECK(IsPermutation(SeriationOrder(std::vector<double>(16, nan), 4), 4));
  CHECK_THROWS_AS(SeriationOrder(std::vector<double>(5, 0.0), 2), Error);
}

TEST_CASE("cosine similarity of rows and columns", "[seriation]") {
  // [[1, 0], [2, 0], [0, 3]]: rows 0 and 1 point the same way; columns are orthogonal.
  const std::vector<double> m = {1, 0, 2, 0, 0, 3};
  const std::vector<double> rows = CosineSimilarity(m, 3, 2);
  REQUIRE(rows.size() == 9);
  CHECK(rows[0 * 3 + 1] == Approx(1.0));
  CHECK(rows[0 * 3 + 2] == Approx(0.0));
  CHECK(rows[2 * 3 + 2] == Approx(1.0));
  const std::vector<double> cols = CosineSimilarity(m, 3, 2, true);
  REQUIRE(cols.size() == 4);
  CHECK(cols[1] == Approx(0.0));
  CHECK(cols[3] == Approx(1.0));
}

TEST_CASE("expert-pair rates from co-activation and transition counts", "[seriation]") {
  // 3 experts: c = (10, 5, 0); 4 tokens chose both 0 and 1.
  const std::vector<int64_t> co = {10, 4, 0, 4, 5, 0, 0, 0, 0};
  const std::vector<double> p = CoactivationRates(co, 3);
  CHECK(std::isnan(p[0]));
  CHECK(p[0 * 3 + 1] == Approx(0.4));
  CHECK(p[1 * 3 + 0] == Approx(0.8));
  CHECK(std::isnan(p[2 * 3 + 0]));  // expert 2 got no token
  const std::vector<double> s = CoactivationSimilarity(co, 3);
  CHECK(s[0 * 3 + 1] == Approx(4 / std::sqrt(50.0)));
  CHECK(s[1 * 3 + 0] == s[0 * 3 + 1]);
  CHECK(s[0] == Approx(1.0));
  CHECK(s[2 * 3 + 2] == 0.0);
  // Transitions: of the 10 tokens at expert 0, 6 go to expert 2 at the next layer.
  const std::vector<int64_t> tr = {1, 3, 6, 5, 0, 0, 0, 0, 0};
  const std::vector<double> t = TransitionRates(tr, co, 3);
  CHECK(t[0 * 3 + 2] == Approx(0.6));
  CHECK(t[1 * 3 + 0] == Approx(1.0));
  CHECK(std::isnan(t[2 * 3 + 1]));
  CHECK_THROWS_AS(CoactivationRates(std::vector<int64_t>(4, 0), 3), Error);
}
