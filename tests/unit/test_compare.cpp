// moescope compare on traces of the bundled model: a trace against itself, and against a trace
// made with one expert disabled (re-routed), where the first choice must flip exactly at the
// tokens whose first choice was that expert, in that layer and no layer below.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <string>

#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/stats/routing_compare.h"
#include "analysis/trace/trace_reader.h"
#include "analysis/run/trace_runner.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

std::filesystem::path Trace(const LoadedModel& m, const std::filesystem::path& out,
                            const RoutingPolicy& policy, bool logits) {
  TraceOptions t = trace_test::TinyOptions(out);
  t.run.record_logits = logits;
  RunTrace(m, policy, t);
  return out;
}

}  // namespace

TEST_CASE("compare: a trace against itself and against a disabled expert", "[compare]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const LlamaMoeConfig& c = m.config();
  const auto dir = TempDir("compare");
  const auto a = Trace(m, dir / "a.h5", RoutingPolicy{}, true);
  const TraceReader ra(a);
  const int64_t N = ra.num_tokens();
  const int M = static_cast<int>(ra.domains().size());
  const RoutingRows rows = ra.ReadRouting(0, N);
  // The most frequent first choice of layer 1.
  std::vector<int64_t> first(c.num_experts, 0);
  for (int64_t t = 0; t < N; ++t) ++first[rows.Ids(t, 1)[0]];
  const int e = static_cast<int>(std::max_element(first.begin(), first.end()) - first.begin());

  SECTION("against itself") {
    const CompareReport r = CompareTraces(a, a);
    REQUIRE(r.has_margin);
    for (int l = 0; l < c.num_hidden_layers; ++l)
      for (int d = 0; d <= M; ++d) {
        CHECK(r.Find(CompareMetric::kFlipRateTop1, l, -1, d)->value == 0);
        CHECK(r.Find(CompareMetric::kTopkOverlap, l, -1, d)->value == 1);
        CHECK(r.Find(CompareMetric::kTopkJaccard, l, -1, d)->value == 1);
        CHECK(r.Find(CompareMetric::kLoadCosine, l, -1, d)->value == Approx(1.0));
        CHECK(r.Find(CompareMetric::kLoadTv, l, -1, d)->value == 0);
        for (int x = 0; x < c.num_experts; ++x)
          CHECK(r.Find(CompareMetric::kShareDelta, l, x, d)->value == 0);
      }
    CHECK(r.Find(CompareMetric::kTokens, 0, -1, M)->value == N);
  }

  SECTION("against a trace with the layer-1 expert disabled") {
    RoutingPolicy p = PolicyFromFlags("1:" + std::to_string(e), "reroute", "", "", c);
    const auto b = Trace(m, dir / "b.h5", p, false);
    CompareOptions o;
    o.token_flips = true;
    const CompareReport r = CompareTraces(a, b, o);
    REQUIRE(r.token_flips.size() == static_cast<size_t>(N) * c.num_hidden_layers);
    int64_t expected = 0, mismatches = 0;
    for (int64_t t = 0; t < N; ++t) {
      mismatches += r.token_flips[static_cast<size_t>(t) * 2 + 0] != 0;  // layer 0 untouched
      const bool was_e = rows.Ids(t, 1)[0] == e;
      expected += was_e;
      mismatches += (r.token_flips[static_cast<size_t>(t) * 2 + 1] != 0) != was_e;
    }
    INFO("expert " << e << " was the first choice of " << expected << " of " << N << " tokens");
    CHECK(expected > 0);
    CHECK(mismatches == 0);
    CHECK(r.Find(CompareMetric::kFlipRateTop1, 0, -1, M)->value == 0);
    CHECK(r.Find(CompareMetric::kFlipRateTop1, 1, -1, M)->value ==
          Approx(static_cast<double>(expected) / N));
    CHECK(r.Find(CompareMetric::kShareB, 1, e, M)->value ==
          0);  // the disabled expert takes nothing
    CHECK(r.Find(CompareMetric::kTopkOverlap, 1, -1, M)->value < 1);
    // Margin bins (A has logits for every token) cover every token of a layer.
    double in_bins = 0;
    for (const CompareRow& row : r.rows)
      if (row.metric == CompareMetric::kFlipRateByMargin && row.layer == 1 && row.domain == M)
        in_bins += row.n;
    CHECK(in_bins == N);

    // B as the reference has no logits: no margin split, and the note says why.
    const CompareReport back = CompareTraces(b, a);
    CHECK_FALSE(back.has_margin);
    CHECK_THAT(back.note, Catch::Contains("--record-logits"));
    for (const CompareRow& row : back.rows) CHECK(row.metric != CompareMetric::kFlipRateByMargin);

    // The command line writes the same table and files.
    const auto out = dir / "cmp";
    const auto cli = trace_test::RunCommand(
        trace_test::Quote(trace_test::Cli()) + " compare " + trace_test::Quote(a.string()) + " " +
        trace_test::Quote(b.string()) + " -o " + trace_test::Quote(out.string()));
    INFO(cli.output);
    CHECK(cli.status == 0);
    CHECK_THAT(cli.output, Catch::Contains("flip(top1)"));
    CHECK(std::filesystem::exists(out / "compare.csv"));
    CHECK(std::filesystem::exists(out / "compare.json"));
    // The files name the metrics as before the typed ids: tokens first, then the rates.
    std::ifstream csv(out / "compare.csv");
    std::string header, first, second;
    std::getline(csv, header);
    std::getline(csv, first);
    std::getline(csv, second);
    CHECK(first.rfind("0,-1,", 0) == 0);
    CHECK_THAT(first, Catch::Contains(",tokens,"));
    CHECK_THAT(second, Catch::Contains(",flip_rate_top1,"));
    CHECK(std::string(CompareMetricName(CompareMetric::kFlipRateByMargin)) ==
          "flip_rate_by_margin");
  }

  SECTION("traces over other tokens are refused") {
    TraceOptions t = trace_test::TinyOptions(dir / "other.h5");
    t.run.only_domains = {"code"};
    RunTrace(m, RoutingPolicy{}, t);
    CHECK_THROWS_WITH(CompareTraces(a, dir / "other.h5"),
                      Catch::Contains("other.h5") && Catch::Contains("same tokens"));
  }
}
