// moescope compare on traces of the bundled model: a trace against itself, and against a trace
// made with one expert disabled (re-routed), where the first choice must flip exactly at the
// tokens whose first choice was that expert, in that layer and no layer below. On a synthetic
// pair of traces with known margins: quantile margin bins hold equal counts, the recorded edges
// are the ones used, fixed edges still work, and every rate and its interval over documents
// match an independent numpy/scipy computation (tests/python/check_compare.py).
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/common/float16.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/routing_compare.h"
#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_file.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

// A synthetic pair of traces over the same tokens: L = 2, E = 8, K = 2, 3 domains, kDocs
// documents of 40..99 tokens. A records router logits for every token; at (token t, layer l) its
// boundary margin z_(2) − z_(3) is k/2048 with k = 1 + (769 t + 131 l) mod 2047, distinct within
// a layer and exact in float16. B flips A's first choice with a probability that falls with the
// margin and differs between documents, and sometimes changes only the second choice.
constexpr int kDocs = 24, kL = 2, kE = 8, kK = 2;

double SyntheticMargin(int64_t t, int l) {
  return static_cast<double>(1 + (769 * t + 131 * l) % 2047) / 2048.0;
}

void WriteSyntheticPair(const std::filesystem::path& a_path, const std::filesystem::path& b_path) {
  for (const bool is_a : {true, false}) {
    TraceHeader h;
    h.model_path = "/synthetic";
    h.model_config = nlohmann::json{{"vocab_size", 64}}.dump();
    h.checkpoint_sha256 = "{}";
    h.routing_policy = "{}";
    h.num_layers = kL;
    h.num_experts = kE;
    h.top_k = kK;
    h.score_scale_factor = {1.0f, 1.0f};
    h.windowing = "{}";
    h.corpus = "{}";
    h.domains = {"x", "y", "z"};
    h.source_id_bytes = 8;
    h.record_logits = is_a;
    h.logit_sample_rate = is_a ? 1.0 : 0.0;
    TraceFile file = TraceFile::Create(is_a ? a_path : b_path, h);
    ExpertStats stats(3, kL, kE);
    TraceChunk c;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    auto unit = [&] {  // xorshift64, the same stream for both traces
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      return static_cast<double>(s >> 11) / 9007199254740992.0;
    };
    int64_t t = 0;
    for (int d = 0; d < kDocs; ++d) {
      const int64_t n = 40 + (d * 37) % 60;
      const int16_t m = static_cast<int16_t>(d % 3);
      const double doc_rate = 0.2 + 0.6 * ((d * 7) % 10) / 10.0;
      c.doc_tokens.push_back(n);
      c.doc_domain.push_back(m);
      std::string id = "d";  // (operator+ on a literal trips GCC 12's -Wrestrict)
      id += std::to_string(d);
      c.doc_source_id.push_back(id);
      for (int64_t i = 0; i < n; ++i, ++t) {
        c.id.push_back(static_cast<int32_t>(t % 64));
        c.position.push_back(static_cast<int32_t>(i));
        c.doc.push_back(d);
        c.nll.push_back(1.0f);
        int16_t ids[kL * kK];
        float w[kL * kK];
        std::vector<float> z(static_cast<size_t>(kL) * kE, -1.0f);
        for (int l = 0; l < kL; ++l) {
          const int e1 = static_cast<int>((t + l) % kE);
          const int e2 = static_cast<int>((e1 + 1 + t % 3) % kE);
          const int e3 = (e2 + 1) % kE == e1 ? (e2 + 2) % kE : (e2 + 1) % kE;
          const double margin = SyntheticMargin(t, l);
          z[static_cast<size_t>(l) * kE + e1] = 1.0f;
          z[static_cast<size_t>(l) * kE + e2] = static_cast<float>(margin);
          z[static_cast<size_t>(l) * kE + e3] = 0.0f;
          int first = e1, second = e2;
          const double u = unit(), v = unit();  // drawn for both traces alike
          if (!is_a) {
            if (u < doc_rate * (1.0 - margin)) {
              first = v < 0.5 ? e2 : e3;
              second = v < 0.5 ? e1 : e2;
            } else if (v < 0.2) {
              second = e3;
            }
          }
          ids[l * kK] = static_cast<int16_t>(first);
          ids[l * kK + 1] = static_cast<int16_t>(second);
          w[l * kK] = 0.6f;
          w[l * kK + 1] = 0.4f;
        }
        c.topk_ids.insert(c.topk_ids.end(), ids, ids + kL * kK);
        c.topk_weights.insert(c.topk_weights.end(), w, w + kL * kK);
        stats.AddToken(m, ids, w, kK);
        if (is_a) {
          c.logit_token.push_back(t);
          for (float x : z) c.router_logits.push_back(FloatToHalf(x));
        }
      }
    }
    c.load = stats.load();
    c.importance = stats.importance();
    file.Commit(c);
    file.MarkComplete();
    file.Close();
  }
}

trace_test::CommandResult CheckWithNumpy(const std::filesystem::path& a,
                                         const std::filesystem::path& b,
                                         const std::filesystem::path& dir,
                                         const std::string& extra = "") {
  const std::string py = std::string(MOESCOPE_SOURCE_DIR) + "/tests/python/check_compare.py";
  std::string cmd = "/usr/bin/python3";
  for (const std::string& arg : {py, a.string(), b.string(), dir.string()})
    cmd.append(" ").append(trace_test::Quote(arg));
  return trace_test::RunCommand(cmd.append(" ").append(extra));
}

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
  const ModelConfig& c = m.config();
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
    CHECK(r.margin_binning == "quantile");
    // The flip rate has an interval over the documents, and it holds the estimate.
    const CompareRow* flip1 = r.Find(CompareMetric::kFlipRateTop1, 1, -1, M);
    CHECK(flip1->documents == ra.num_documents());
    CHECK(flip1->ci_low <= flip1->value);
    CHECK(flip1->ci_high >= flip1->value);
    CHECK(flip1->ci_high > flip1->ci_low);

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

TEST_CASE("compare: quantile margin bins, recorded edges, fixed edges", "[compare]") {
  const auto dir = TempDir("compare-synthetic");
  const auto a = dir / "a.h5", b = dir / "b.h5";
  WriteSyntheticPair(a, b);
  const TraceReader ra(a);
  const int64_t N = ra.num_tokens();
  const int M = static_cast<int>(ra.domains().size());
  REQUIRE(N < 2047);  // distinct margins

  SECTION("quantile bins hold equal counts, and the recorded edges are the ones used") {
    const int bins = GENERATE(4, 10);
    CompareOptions o;
    o.margin_bins = bins;
    o.token_flips = true;  // compare.h5 with /margin_edges
    const CompareReport r = CompareTraces(a, b, o);
    REQUIRE(r.has_margin);
    CHECK(r.margin_binning == "quantile");
    CHECK(r.margin_bins_requested == bins);
    REQUIRE(r.margin_edges.size() == static_cast<size_t>(kL));
    for (int l = 0; l < kL; ++l) {
      INFO("layer " << l << ", " << bins << " bins");
      CHECK(r.margin_samples[static_cast<size_t>(l)] == N);
      // The edges by the documented rule from the known margins.
      std::vector<double> margins;
      for (int64_t t = 0; t < N; ++t) margins.push_back(SyntheticMargin(t, l));
      std::sort(margins.begin(), margins.end());
      std::vector<double> want = {0.0};
      for (int j = 1; j < bins; ++j)
        want.push_back(margins[static_cast<size_t>((j * N + bins - 1) / bins)]);
      CHECK(r.margin_edges[static_cast<size_t>(l)] == want);
      for (int d = 0; d <= M; ++d) {
        const auto rows = r.MarginRows(l, d);
        REQUIRE(rows.size() == static_cast<size_t>(bins));
        double total = 0;
        for (int i = 0; i < bins; ++i) {
          CHECK(rows[static_cast<size_t>(i)]->bin_low == want[static_cast<size_t>(i)]);
          CHECK(rows[static_cast<size_t>(i)]->bin_high ==
                (i + 1 < bins ? want[static_cast<size_t>(i + 1)] : INFINITY));
          total += rows[static_cast<size_t>(i)]->n;
          if (d == M) {  // all domains: ⌊N/bins⌋ or ⌈N/bins⌉ per bin
            CHECK(rows[static_cast<size_t>(i)]->n >= N / bins);
            CHECK(rows[static_cast<size_t>(i)]->n <= (N + bins - 1) / bins);
          }
          if (rows[static_cast<size_t>(i)]->documents >= 2) {
            CHECK(rows[static_cast<size_t>(i)]->ci_low <= rows[static_cast<size_t>(i)]->value);
            CHECK(rows[static_cast<size_t>(i)]->ci_high >= rows[static_cast<size_t>(i)]->value);
          }
        }
        if (d == M) CHECK(total == N);
      }
      // Flips fall with the margin by construction: the first bin flips more than the last.
      const auto all = r.MarginRows(l, M);
      CHECK(all.front()->value > all.back()->value);
    }
    // The files record the same edges; every rate and interval matches numpy/scipy.
    const auto out = dir / ("q" + std::to_string(bins));
    ExportCompare(out, r);
    std::ifstream in(out / "compare.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    CHECK(j["margin_bins"]["mode"] == "quantile");
    CHECK(j["margin_bins"]["edges"].get<std::vector<std::vector<double>>>() == r.margin_edges);
    CHECK(j["ci"]["level"] == 0.95);
    const auto check = CheckWithNumpy(a, b, out, "--bins " + std::to_string(bins));
    INFO(check.output);
    CHECK(check.status == 0);
    CHECK_THAT(check.output, Catch::Contains("OK check_compare.py"));
  }

  SECTION("fixed edges still work") {
    CompareOptions o;
    o.margin_edges = {0.0, 0.25, 0.5};
    const CompareReport r = CompareTraces(a, b, o);
    CHECK(r.margin_binning == "fixed");
    for (int l = 0; l < kL; ++l) {
      CHECK(r.margin_edges[static_cast<size_t>(l)] == o.margin_edges);
      int64_t want[3] = {0, 0, 0};
      for (int64_t t = 0; t < N; ++t) {
        const double m = SyntheticMargin(t, l);
        ++want[m < 0.25 ? 0 : m < 0.5 ? 1 : 2];
      }
      const auto rows = r.MarginRows(l, M);
      REQUIRE(rows.size() == 3);
      for (int i = 0; i < 3; ++i) {
        CHECK(rows[static_cast<size_t>(i)]->bin_low == o.margin_edges[static_cast<size_t>(i)]);
        CHECK(rows[static_cast<size_t>(i)]->n == want[i]);
      }
      CHECK(std::isinf(rows[2]->bin_high));
    }
    const auto out = dir / "fixed";
    ExportCompare(out, r);
    const auto check = CheckWithNumpy(a, b, out, "--edges 0,0.25,0.5");
    INFO(check.output);
    CHECK(check.status == 0);
    CHECK_THAT(check.output, Catch::Contains("OK check_compare.py"));

    // The command line: --margin-edges and --margin-bins, not both.
    const std::string ab = trace_test::Quote(a.string()) + " " + trace_test::Quote(b.string());
    const auto cli = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " compare " +
                                            ab + " --margin-edges 0,0.25,0.5");
    INFO(cli.output);
    CHECK(cli.status == 0);
    CHECK_THAT(cli.output, Catch::Contains("fixed edges") && Catch::Contains("[0.25, 0.5)"));
    const auto quantile = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) +
                                                 " compare " + ab + " --margin-bins 5");
    CHECK(quantile.status == 0);
    CHECK_THAT(quantile.output, Catch::Contains("5 quantile bins"));
    const auto both = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " compare " +
                                             ab + " --margin-bins 5 --margin-edges 0,1");
    CHECK(both.status != 0);
    o.margin_edges = {0.0, 0.5, 0.5};
    CHECK_THROWS_WITH(CompareTraces(a, b, o), Catch::Contains("increasing"));
  }
}

TEST_CASE("compare: quantile edges merge ties; the ratio interval over documents", "[compare]") {
  std::vector<double> tied = {0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 2};
  CHECK(QuantileMarginEdges(tied, 10) == std::vector<double>{0.0, 0.5, 2.0});
  std::vector<double> none;
  CHECK(QuantileMarginEdges(none, 10) == std::vector<double>{0.0});
  std::vector<double> distinct = {0.4, 0.1, 0.3, 0.2};
  CHECK(QuantileMarginEdges(distinct, 2) == std::vector<double>{0.0, 0.3});

  // a = (1, 2, 0), n = (10, 10, 5): r = 3/25, Σ(a − r n)² = 0.04 + 0.64 + 0.36 = 1.04,
  // var = 1.04 · 3/2 / 625; with 2 degrees of freedom t has the closed form
  // t(2, 0.975) = q·sqrt(2/(1 − q²)), q = 2·0.975 − 1 (scipy's t.ppf gives it to 4e-11 only).
  ClusterRatio ri;
  ri.Add(1, 10);
  ri.Add(2, 10);
  ri.Add(0, 0);  // no denominator: not a document of this ratio
  ri.Add(0, 5);
  CHECK(ri.groups == 3);
  CHECK(ri.Ratio() == Approx(0.12));
  const double t2 = 0.95 * std::sqrt(2 / (1 - 0.95 * 0.95));
  const double half = t2 * std::sqrt(1.04 * 1.5 / 625);
  const auto [lo, hi] = ri.Interval(0.95);
  CHECK(lo == Approx(0.12 - half).epsilon(1e-12));  // compare's rates clip this at 0
  CHECK(hi == Approx(0.12 + half).epsilon(1e-12));
  ClusterRatio one;
  one.Add(3, 10);
  CHECK(std::isnan(one.Interval(0.95).first));
}
