// Expert-cache simulation (analysis/cache/): hand-worked LRU and LFU sequences, Belady against a
// brute-force optimum on small sequences and never below LRU or LFU on random ones, resets, and
// `moescope cache-sim` on a trace of the bundled model against an independent numpy LRU and
// prefetching LRU (tests/python/check_cache_sim.py).
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "analysis/cache/cache_sim.h"
#include "analysis/cache/expert_cache.h"
#include "tests/unit/cache_test_util.h"
#include "trace_test_util.h"

using namespace moe;
using moe::test::Sequence;

namespace {

int Total(const std::vector<int32_t>& hits) {
  int s = 0;
  for (int h : hits) s += h;
  return s;
}

// The fewest misses any replacement choice achieves (demand fetching, requests served in order),
// by trying every victim at every eviction.
int BruteForceMisses(const std::vector<int16_t>& requests, int capacity) {
  std::function<int(size_t, std::set<int16_t>)> best = [&](size_t p, std::set<int16_t> cache) {
    if (p == requests.size()) return 0;
    const int16_t e = requests[p];
    if (cache.count(e)) return best(p + 1, cache);
    if (static_cast<int>(cache.size()) < capacity) {
      cache.insert(e);
      return 1 + best(p + 1, cache);
    }
    int fewest = 1 << 30;
    for (int16_t victim : std::set<int16_t>(cache)) {
      std::set<int16_t> next = cache;
      next.erase(victim);
      next.insert(e);
      fewest = std::min(fewest, 1 + best(p + 1, next));
    }
    return fewest;
  };
  return best(0, {});
}

}  // namespace

TEST_CASE("LRU and LFU caches on hand-worked request sequences", "[cache]") {
  // Capacity 2, one request per token: 0 1 0 2 1 0.
  const RequestSequence r = Sequence({{0}, {1}, {0}, {2}, {1}, {0}});
  // LRU: miss miss hit miss(evicts 1) miss(evicts 0) miss(evicts 2)
  CHECK(SimulateCache(r, 3, 2, CachePolicy::kLru) == std::vector<int32_t>{0, 0, 1, 0, 0, 0});
  // LFU: when 2 arrives, 0 has 2 requests and 1 has 1, so 1 goes; when 1 comes back, 2 (1
  // request) goes rather than 0 (2); so the last 0 hits.
  CHECK(SimulateCache(r, 3, 2, CachePolicy::kLfu) == std::vector<int32_t>{0, 0, 1, 0, 0, 1});
  // Belady: at token 3 (2) evict the one used farthest ahead: 0 at 5 vs 1 at 4, so 0 goes;
  // token 4 (1) hits; token 5 (0) misses. 2 hits either way, the optimum.
  CHECK(Total(SimulateCache(r, 3, 2, CachePolicy::kBelady)) == 2);
  // A cache of every expert misses each expert once; a reset before token 3 starts over.
  CHECK(Total(SimulateCache(r, 3, 3, CachePolicy::kLru)) == 6 - 3);
  const std::vector<uint8_t> reset = {0, 0, 0, 1, 0, 0};
  CHECK(Total(SimulateCache(r, 3, 3, CachePolicy::kLru, reset)) == 6 - 3 - 2);
  // Two requests per token, padding skipped.
  const RequestSequence pairs = Sequence({{0, 1}, {1, -1}, {2, 0}});
  CHECK(pairs.tokens() == 3);
  CHECK(SimulateCache(pairs, 3, 2, CachePolicy::kLru) == std::vector<int32_t>{0, 1, 0});
  CHECK_THROWS_WITH(SimulateCache(pairs, 2, 1, CachePolicy::kLru), Catch::Contains("expert 2"));
}

TEST_CASE("Belady equals the brute-force optimum and is never below LRU or LFU", "[cache]") {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 200; ++trial) {
    const int E = 5, k = trial % 2 + 1, tokens = 6;
    std::vector<double> weights = {5, 3, 2, 1, 1};
    std::vector<std::vector<int16_t>> seq;
    for (int t = 0; t < tokens; ++t) {
      std::vector<int16_t> set;
      std::vector<double> w = weights;
      for (int j = 0; j < k; ++j) {
        std::discrete_distribution<int> pick(w.begin(), w.end());
        const int e = pick(rng);
        set.push_back(static_cast<int16_t>(e));
        w[static_cast<size_t>(e)] = 0;
      }
      seq.push_back(set);
    }
    const RequestSequence r = Sequence(seq);
    for (int capacity = 1; capacity <= 3; ++capacity) {
      const int requests = static_cast<int>(r.expert.size());
      const int belady = Total(SimulateCache(r, E, capacity, CachePolicy::kBelady));
      INFO("trial " << trial << " capacity " << capacity);
      CHECK(requests - belady == BruteForceMisses(r.expert, capacity));
      CHECK(belady >= Total(SimulateCache(r, E, capacity, CachePolicy::kLru)));
      CHECK(belady >= Total(SimulateCache(r, E, capacity, CachePolicy::kLfu)));
    }
  }
  // Longer random sequences: still never below, and LRU's hits grow with the capacity (the
  // stack property).
  for (int trial = 0; trial < 20; ++trial) {
    RequestSequence r;
    std::uniform_int_distribution<int> pick(0, 15);
    for (int t = 0; t < 500; ++t) {
      const int16_t a = static_cast<int16_t>(pick(rng));
      int16_t b = static_cast<int16_t>(pick(rng));
      if (b == a) b = static_cast<int16_t>((a + 1) % 16);
      const std::vector<int16_t> set = {a, b};
      r.AddToken(set);
    }
    int previous = -1;
    for (int capacity : {2, 4, 8, 12}) {
      const int lru = Total(SimulateCache(r, 16, capacity, CachePolicy::kLru));
      CHECK(Total(SimulateCache(r, 16, capacity, CachePolicy::kBelady)) >= lru);
      CHECK(Total(SimulateCache(r, 16, capacity, CachePolicy::kBelady)) >=
            Total(SimulateCache(r, 16, capacity, CachePolicy::kLfu)));
      CHECK(lru >= previous);
      previous = lru;
    }
  }
}

TEST_CASE("moescope cache-sim on a trace of the bundled model matches an independent LRU",
          "[cache][cli]") {
  const auto dir = TempDir("cache-sim");
  const auto trace = dir / "trace.h5";
  const auto traced =
      trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " trace --corpus " +
                             trace_test::Quote(trace_test::TinyCorpus().string()) + " -o " +
                             trace_test::Quote(trace.string()));
  INFO(traced.output);
  REQUIRE(traced.status == 0);
  const auto out = dir / "sim";
  const auto sim = trace_test::RunCommand(
      trace_test::Quote(trace_test::Cli()) + " cache-sim " + trace_test::Quote(trace.string()) +
      " -o " + trace_test::Quote(out.string()) + " --capacities 2,4,8 --min-documents 2");
  INFO(sim.output);
  REQUIRE(sim.status == 0);
  CHECK_THAT(sim.output, Catch::Contains("belady"));
  const std::string py = (trace_test::SourceDir() / "tests/python/check_cache_sim.py").string();
  const auto check = trace_test::RunCommand("/usr/bin/python3 " + trace_test::Quote(py) + " " +
                                            trace_test::Quote(trace.string()) + " " +
                                            trace_test::Quote(out.string()));
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK_THAT(check.output, Catch::Contains("OK check_cache_sim.py"));
  // A capacity outside 1..E is a one-line error.
  const auto bad = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " cache-sim " +
                                          trace_test::Quote(trace.string()) + " --capacities 0");
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("--capacities: cache size 0 is outside 1.."));
  const auto policy =
      trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " cache-sim " +
                             trace_test::Quote(trace.string()) + " --policies lru,fifo");
  CHECK(policy.status == 1);
  CHECK_THAT(policy.output, Catch::Contains("--policies: unknown cache policy 'fifo'"));
}
