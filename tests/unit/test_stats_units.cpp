// Routing statistics on hand-built traces whose answers are worked out here by hand
// (docs/routing-metrics.md §2), and the resampling pieces they rest on.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>

#include "analysis/stats/metrics.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/stats_export.h"
#include "analysis/stats/trace_scan.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "stats_test_util.h"
#include "test_paths.h"

using namespace moe;
using stats_test::HandDoc;
using stats_test::HandTrace;

namespace {

StatsReport Stats(const std::vector<std::filesystem::path>& paths, StatsOptions o = {}) {
  const TraceSetInfo set = InspectTraces(paths);
  return BuildStatsReport(AccumulateTraces(set, o), set.domains);
}

double Value(const StatsReport& r, Metric metric, int layer, int expert, int domain) {
  const StatsRow* row = r.Find(metric, layer, expert, domain);
  INFO(MetricName(metric) << " layer " << layer << " expert " << expert << " domain " << domain);
  REQUIRE(row != nullptr);
  return row->value;
}

}  // namespace

TEST_CASE("hashed permutations are bijections and Poisson weights have mean 1", "[stats]") {
  for (int64_t n : {1, 2, 3, 7, 100, 1000, 4097}) {
    const HashPermutation p(n, 42, 3);
    std::set<int64_t> seen;
    for (int64_t i = 0; i < n; ++i) seen.insert(p.Apply(i));
    CHECK(static_cast<int64_t>(seen.size()) == n);
    CHECK(*seen.rbegin() == n - 1);
  }
  double sum = 0, zeros = 0;
  const int draws = 200000;
  for (int i = 0; i < draws; ++i) {
    const int w = PoissonWeight(7, i, i % 13);
    sum += w;
    zeros += w == 0;
  }
  CHECK(sum / draws == Approx(1.0).margin(0.01));
  CHECK(zeros / draws == Approx(std::exp(-1.0)).margin(0.01));
  CHECK(PoissonWeight(7, 5, 2) == PoissonWeight(7, 5, 2));  // a hash, not a stream
  std::vector<double> v = {5, 1, 4, 2, 3, std::nan("")};
  const auto [lo, hi] = PercentileInterval(v, 0.5);  // quartiles of 1..5, numpy: 2 and 4
  CHECK(lo == Approx(2.0));
  CHECK(hi == Approx(4.0));
}

TEST_CASE("uniform routing has CV 0, lift 1 and shares at their baselines", "[stats]") {
  // E = 4, K = 2: every one of the 6 pairs twice per document, two domains alike.
  HandTrace t;
  const std::vector<std::vector<int16_t>> pairs = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  for (const char* domain : {"a", "b", "a", "b"}) {
    auto& d = t.Add(domain, std::vector<int32_t>(12, 5), {0, 1});
    for (size_t i = 0; i < 12; ++i) d.route[i] = pairs[i % 6];
  }
  const auto path = TempDir("stats-uniform") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  const int all = 2;
  for (int m : {0, 1, all}) {
    const double N = m == all ? 48 : 24;
    CHECK(Value(r, Metric::kTokens, 0, -1, m) == N);
    CHECK(Value(r, Metric::kCvLoad, 0, -1, m) == Approx(0).margin(1e-12));
    CHECK(Value(r, Metric::kCvLoadUnbiased, 0, -1, m) == Approx(0).margin(1e-12));
    CHECK(Value(r, Metric::kMaxOverMean, 0, -1, m) == Approx(1.0));
    CHECK(Value(r, Metric::kMaxvio, 0, -1, m) == Approx(0).margin(1e-12));
    CHECK(Value(r, Metric::kDeadFraction, 0, -1, m) == 0);
    CHECK(Value(r, Metric::kLoadEntropy, 0, -1, m) == Approx(std::log(4.0)));
    CHECK(Value(r, Metric::kDiversity, 0, -1, m) == Approx(1.0));
    for (int e = 0; e < 4; ++e) {
      CHECK(Value(r, Metric::kLoadCount, 0, e, m) == N * 2 / 4);
      CHECK(Value(r, Metric::kAssignmentShare, 0, e, m) == Approx(0.25));
      CHECK(Value(r, Metric::kTokenCoverage, 0, e, m) == Approx(0.5));
      CHECK(Value(r, Metric::kRelativeLoad, 0, e, m) == Approx(1.0));
      CHECK(r.Find(Metric::kAssignmentShare, 0, e, m)->baseline == Approx(0.25));
      CHECK(r.Find(Metric::kTokenCoverage, 0, e, m)->baseline == Approx(0.5));
      if (m != all) {
        CHECK(Value(r, Metric::kDomainSpecTopk, 0, e, m) == Approx(0.5));
        CHECK(Value(r, Metric::kDomainSpecLiftTopk, 0, e, m) == Approx(1.0));
        // Every document routes alike, so no relabelling changes anything: p = 1.
        CHECK(Value(r, Metric::kDomainSpecPermPTopk, 0, e, m) == Approx(1.0));
      }
    }
  }
  // First choices 0,0,0,1,1,2 per 6 tokens: top1 shares 1/2, 1/3, 1/6, 0.
  CHECK(Value(r, Metric::kTop1Share, 0, 0, all) == Approx(0.5));
  CHECK(Value(r, Metric::kTop1Share, 0, 2, all) == Approx(1.0 / 6));
  CHECK(Value(r, Metric::kTop1Share, 0, 3, all) == 0);
  // Four documents are fewer than the default minimum for an interval: the estimate alone.
  const StatsRow* share = r.Find(Metric::kAssignmentShare, 0, 1, all);
  CHECK(share->docs == 4);
  CHECK(std::isnan(share->ci_low));
  // With a minimum of 2: every document is identical, so every bootstrap replicate has the same
  // shares and the interval is the point.
  StatsOptions two;
  two.min_documents = 2;
  const StatsReport with_two = Stats({path}, two);
  const StatsRow* narrow = with_two.Find(Metric::kAssignmentShare, 0, 1, all);
  CHECK(narrow->ci_low == Approx(0.25));
  CHECK(narrow->ci_high == Approx(0.25));
  // Co-activation P(j | i) over all pairs: each i meets each j in 2 of its 6 tokens per 12.
  const int64_t* co = r.coactivation.data() + static_cast<size_t>(all) * 16;
  CHECK(co[0 * 4 + 0] == 24);
  CHECK(co[0 * 4 + 1] == 8);
  CHECK(co[3 * 4 + 2] == 8);
  // No router logits: the derived entropy metrics are absent.
  CHECK(r.Find(Metric::kRouterEntropyDerived, 0, -1, all) == nullptr);
  CHECK_FALSE(r.has_logits);
}

TEST_CASE("one expert taking every token gives the textbook extremes", "[stats]") {
  HandTrace t;
  t.top_k = 1;
  t.Add("x", {3, 4, 5, 6, 7, 8, 9, 10}, {0});
  t.Add("x", {3, 4}, {0});
  const auto path = TempDir("stats-one") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  const int all = 1;
  // c = (10, 0, 0, 0): mean 2.5, population std sqrt((7.5^2 + 3 * 2.5^2)/4) = 2.5 sqrt(3).
  CHECK(Value(r, Metric::kCvLoad, 0, -1, all) == Approx(std::sqrt(3.0)));
  CHECK(Value(r, Metric::kCvLoadUnbiased, 0, -1, all) == Approx(2.0));  // sqrt(3) * sqrt(4/3)
  CHECK(Value(r, Metric::kMaxOverMean, 0, -1, all) == Approx(4.0));
  CHECK(Value(r, Metric::kMaxvio, 0, -1, all) == Approx(3.0));
  CHECK(Value(r, Metric::kDeadFraction, 0, -1, all) == Approx(0.75));
  CHECK(Value(r, Metric::kLoadEntropy, 0, -1, all) == Approx(0).margin(1e-12));
  CHECK(Value(r, Metric::kDiversity, 0, -1, all) == Approx(0.25));
  CHECK(Value(r, Metric::kDead, 0, 0, all) == 0);
  CHECK(Value(r, Metric::kDead, 0, 3, all) == 1);
  CHECK(Value(r, Metric::kAssignmentShare, 0, 0, all) == 1);
  CHECK(Value(r, Metric::kRelativeLoad, 0, 0, all) == Approx(4.0));
  CHECK(Value(r, Metric::kImportance, 0, 0, all) == Approx(10.0));  // weight 1 per token (K = 1)
  CHECK(Value(r, Metric::kImportanceShare, 0, 0, all) == Approx(1.0));
  // 7 + 1 adjacent pairs inside the two documents, every one repeating expert 0.
  const StatsRow* rep = r.Find(Metric::kRepeatFirst, 0, -1, all);
  CHECK(rep->n == 8);
  CHECK(rep->value == 1);
  // Every first choice is expert 0: the load-matched baseline Σ f² is 1, and so is the lift.
  CHECK(rep->baseline == Approx(1.0));
  CHECK(Value(r, Metric::kRepeatFirstLiftLoad, 0, -1, all) == Approx(1.0));
  CHECK(Value(r, Metric::kRepeatAny, 0, -1, all) == 1);
  CHECK(r.Find(Metric::kRepeatAny, 0, -1, all)->baseline ==
        Approx(1 - 3.0 / 4));  // 1 - C(3,1)/C(4,1)
  CHECK(Value(r, Metric::kRepeatOverlap, 0, -1, all) == 1);
}

TEST_CASE("two domains on disjoint experts are fully specialized", "[stats]") {
  HandTrace t;
  t.layers = 2;
  for (int d = 0; d < 10; ++d) {
    t.Add("code", {1, 2, 3, 4, 5}, {0, 1, 2, 3});  // layer 0 {0,1}, layer 1 {2,3}
    t.Add("prose", {6, 7, 8, 9}, {2, 3, 0, 1});    // layer 0 {2,3}, layer 1 {0,1}
  }
  const auto path = TempDir("stats-disjoint") / "t.h5";
  t.Write(path);
  StatsOptions o;
  o.permutations = 200;
  const StatsReport r = Stats({path}, o);
  const int code = 0, prose = 1, all = 2;
  CHECK(Value(r, Metric::kDomainSpecTopk, 0, 0, code) == 1);
  CHECK(Value(r, Metric::kDomainSpecTopk, 0, 1, code) == 1);
  CHECK(Value(r, Metric::kDomainSpecTopk, 0, 2, code) == 0);
  CHECK(Value(r, Metric::kDomainSpecTopk, 0, 2, prose) == 1);
  CHECK(Value(r, Metric::kDomainSpecLiftTopk, 0, 0, code) == Approx(2.0));  // 1 / (K/E) = 1 / 0.5
  CHECK(Value(r, Metric::kDomainSpecLiftTopk, 0, 0, prose) == 0);
  CHECK(Value(r, Metric::kDomainSpecTop1, 0, 0, code) == 1);  // first choice is always expert 0
  CHECK(Value(r, Metric::kDomainSpecTop1, 0, 1, code) == 0);
  CHECK(Value(r, Metric::kDomainSpecLiftTop1, 0, 0, code) == Approx(4.0));  // 1 / (1/E)
  CHECK(Value(r, Metric::kDomainSpecTopk, 1, 2, code) == 1);
  // Only the relabelling that keeps every label (or swaps them all) is as extreme: 1/C(20,10)
  // each, so with 200 permutations p = 1/201.
  CHECK(Value(r, Metric::kDomainSpecPermPTopk, 0, 0, code) == Approx(1.0 / 201));
  CHECK(Value(r, Metric::kDomainSpecPermPTop1, 1, 0, prose) == Approx(1.0 / 201));
  // All domains: 50 code tokens and 40 prose tokens.
  CHECK(Value(r, Metric::kTokenCoverage, 0, 0, all) == Approx(50.0 / 90));
  // Co-activation: 0 and 1 always together, never with 2 or 3.
  const int64_t* co = r.coactivation.data() + static_cast<size_t>(all) * 2 * 16;
  CHECK(co[0 * 4 + 1] == co[0 * 4 + 0]);
  CHECK(co[0 * 4 + 2] == 0);
  // Transitions layer 0 -> 1: expert 0 leads to {2, 3} (code) and never to {0, 1}.
  const int64_t* tr = r.transitions.data() + static_cast<size_t>(all) * 16;
  CHECK(tr[0 * 4 + 2] == 50);
  CHECK(tr[0 * 4 + 3] == 50);
  CHECK(tr[0 * 4 + 0] == 0);
  CHECK(tr[2 * 4 + 0] == 40);
}

TEST_CASE("consecutive-token repetition counts pairs inside documents only", "[stats]") {
  HandTrace t;
  // First choices 0 0 1 1 2; sets {0,1} {0,2} {1,3} {1,2} {2,3}.
  auto& d = t.Add("a", {1, 2, 3, 4, 5}, {0, 1});
  d.route = {{0, 1}, {0, 2}, {1, 3}, {1, 2}, {2, 3}};
  // A second document whose first token repeats the first document's last: not a pair.
  t.Add("a", {1, 2}, {2, 3});
  const auto path = TempDir("stats-repeat") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  const StatsRow* first = r.Find(Metric::kRepeatFirst, 0, -1, 1);
  CHECK(first->n == 5);  // 4 pairs in document 0, 1 in document 1
  // Same first choice: (0,0), (1,1) in doc 0 and (2,2) in doc 1 = 3 of 5.
  CHECK(first->value == Approx(3.0 / 5));
  // Shared experts per pair: {0,1}{0,2}: 1; {0,2}{1,3}: 0; {1,3}{1,2}: 1; {1,2}{2,3}: 1;
  // doc 1 {2,3}{2,3}: 2. Any: 4/5; mean overlap 5/5.
  CHECK(Value(r, Metric::kRepeatAny, 0, -1, 1) == Approx(4.0 / 5));
  CHECK(Value(r, Metric::kRepeatOverlap, 0, -1, 1) == Approx(1.0));
  // Baseline of any overlap for E = 4, K = 2: 1 - C(2,2)/C(4,2) = 5/6 (uniform). Of overlap,
  // load-matched: the 7 tokens cover experts 0..3 with counts 2, 3, 5, 4: Σ (c/7)² = 54/49.
  CHECK(r.Find(Metric::kRepeatAny, 0, -1, 1)->baseline == Approx(5.0 / 6));
  CHECK(r.Find(Metric::kRepeatOverlap, 0, -1, 1)->baseline == Approx(54.0 / 49));
}

TEST_CASE("vocabulary specialization keeps tokens seen 10 times", "[stats]") {
  HandTrace t;
  // Token 5: 10 times on {0,1}: v = 1. Token 6: 10 times alternating {0,1}/{2,3}: v = 0.5.
  // Token 7: 3 times, filtered out.
  auto& d = t.Add("a", {}, {0, 1});
  for (int i = 0; i < 10; ++i) {
    d.ids.push_back(5);
    d.route.push_back({0, 1});
    d.ids.push_back(6);
    d.route.push_back(i % 2 == 0 ? std::vector<int16_t>{0, 1} : std::vector<int16_t>{2, 3});
  }
  for (int i = 0; i < 3; ++i) {
    d.ids.push_back(7);
    d.route.push_back({2, 3});
  }
  const auto path = TempDir("stats-vocab") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  REQUIRE(r.has_vocabulary);
  CHECK(r.vocab_input.kept_tokens == 2);
  CHECK(Value(r, Metric::kVocabSpecInputMean, 0, -1, 1) == Approx(0.75));
  // Both kept tokens have argmax expert 0 (token 6 ties 0..3 at 5; the lowest index wins).
  CHECK(Value(r, Metric::kVocabSpecInput, 0, 0, 1) == Approx(0.75));
  CHECK(r.Find(Metric::kVocabSpecInput, 0, 0, 1)->n == 2);
  CHECK(std::isnan(Value(r, Metric::kVocabSpecInput, 0, 2, 1)));
  // Shuffled baseline: every x takes sets drawn from {0,1} x 15, {2,3} x 8; v >= the larger
  // share of half-sets, so between 0.5 and 1, and below the observed 1 of token 5 on average.
  const double shuffled = r.Find(Metric::kVocabSpecInputMean, 0, -1, 1)->baseline;
  CHECK(shuffled >= 0.5);
  CHECK(shuffled <= 1.0);
  // Top tokens of expert 0: token 5 (share 1) before token 6 (share 0.5).
  const TopToken* top = r.vocab_input.top.data();
  CHECK(top[0].token == 5);
  CHECK(top[0].share == 1);
  CHECK(top[1].token == 6);
  CHECK(top[1].count == 5);
  // As next tokens: 6 follows 5 ten times (v = 1: 5 always takes {0,1}); 5 is a next token
  // only 9 times and 7 three times, both filtered.
  CHECK(r.vocab_next.kept_tokens == 1);
  CHECK(Value(r, Metric::kVocabSpecNextMean, 0, -1, 1) == Approx(1.0));
}

TEST_CASE("router entropy, mass and margin of equal logits", "[stats]") {
  HandTrace t;
  auto& d = t.Add("a", {1, 2, 3}, {0, 1});
  d.logits.assign(3, std::vector<float>(4, 0.0f));  // p uniform over 4
  d.logits[2] = {3.0f, 1.0f, 0.0f, 0.0f};           // margin z_(2) - z_(3) = 1
  const auto path = TempDir("stats-logits") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  REQUIRE(r.has_logits);
  const double z = std::exp(3.0) + std::exp(1.0) + 2.0;
  const double p[4] = {std::exp(3.0) / z, std::exp(1.0) / z, 1 / z, 1 / z};
  double h = 0;
  for (double v : p) h -= v * std::log(v);
  CHECK(Value(r, Metric::kRouterEntropyDerived, 0, -1, 1) == Approx((2 * std::log(4.0) + h) / 3));
  CHECK(Value(r, Metric::kRouterEntropyNormDerived, 0, -1, 1) ==
        Approx((2 * std::log(4.0) + h) / 3 / std::log(4.0)));
  // Top-2 mass: ties at 0 in the uniform rows take all 4 (mass 1); row 3: p0 + p1.
  CHECK(Value(r, Metric::kTopkMassDerived, 0, -1, 1) == Approx((2 * 1.0 + p[0] + p[1]) / 3));
  CHECK(Value(r, Metric::kMarginLogit, 0, -1, 1) == Approx(1.0 / 3));
  CHECK(Value(r, Metric::kZLossDerived, 0, -1, 1) ==
        Approx((2 * std::pow(std::log(4.0), 2) + std::pow(std::log(z), 2)) / 3));
  CHECK(Value(r, Metric::kSoftLoadDerived, 0, 0, 1) == Approx((0.25 + 0.25 + p[0]) / 3));
  // Histograms: entropy deficits 0, 0 and 1 - h/log 4; margins 0, 0, 1. Quantile bins from the
  // data: the two zeros share the first bin (below the grid), the third value has its own bin.
  const QuantileHistogram& eh = r.entropy_histogram;
  REQUIRE(eh.layer_bins[0] == 2);
  CHECK(eh.edges[0] == 0);
  CHECK(eh.counts[static_cast<size_t>(1) * eh.bins + 0] == 2);  // row 1: all domains
  CHECK(eh.counts[static_cast<size_t>(1) * eh.bins + 1] == 1);
  const double deficit = 1 - h / std::log(4.0);
  CHECK(eh.edges[1] <= deficit);
  CHECK(deficit < eh.edges[2]);
  const QuantileHistogram& mh = r.margin_histogram;
  REQUIRE(mh.layer_bins[0] == 2);
  CHECK(mh.counts[static_cast<size_t>(1) * mh.bins + 0] == 2);
  CHECK(mh.counts[static_cast<size_t>(1) * mh.bins + 1] == 1);
  CHECK(mh.edges[1] <= 1.0);
  CHECK(1.0 < mh.edges[2]);
  // The fine grid's bins: log-spaced, 30 per decade, edges in order.
  CHECK(kMarginGrid.Bin(0.0) == 0);
  CHECK(kMarginGrid.Bin(1e-6) == 1);
  CHECK(kMarginGrid.Bin(1e3) == kMarginGrid.bins + 1);
  CHECK(kMarginGrid.LowerEdge(kMarginGrid.Bin(0.05)) <= 0.05);
  CHECK(0.05 < kMarginGrid.UpperEdge(kMarginGrid.Bin(0.05)));
}

namespace {

// A seeded random trace: 41 documents in 3 domains, L = 2, E = 8, K = 2, with logits.
HandTrace RandomTrace() {
  HandTrace t;
  t.layers = 2;
  t.experts = 8;
  t.top_k = 2;
  uint64_t state = 1;
  auto next = [&] { return MixHash(state++); };
  for (int d = 0; d < 41; ++d) {
    const char* domain = d % 3 == 0 ? "legal" : d % 3 == 1 ? "code" : "prose";
    HandDoc doc{domain, {}, {}, {}, {}};
    const int n = 1 + static_cast<int>(next() % 30);
    for (int i = 0; i < n; ++i) {
      doc.ids.push_back(static_cast<int32_t>(next() % 20));
      std::vector<int16_t> route;
      std::vector<float> z;
      for (int l = 0; l < 2; ++l) {
        const int a = static_cast<int>(next() % 8), b = (a + 1 + static_cast<int>(next() % 7)) % 8;
        route.push_back(static_cast<int16_t>(a));
        route.push_back(static_cast<int16_t>(b));
        for (int e = 0; e < 8; ++e)
          z.push_back(e == a ? 2.0f : e == b ? 1.5f : static_cast<float>(next() % 100) / 100);
      }
      doc.route.push_back(route);
      doc.logits.push_back(z);
    }
    t.docs.push_back(doc);
  }
  return t;
}

void CheckSameRows(const StatsReport& a, const StatsReport& b, bool exact) {
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    const StatsRow &x = a.rows[i], &y = b.rows[i];
    INFO(MetricName(x.metric) << " layer " << x.layer << " expert " << x.expert << " domain "
                              << x.domain);
    REQUIRE((x.metric == y.metric && x.layer == y.layer && x.expert == y.expert &&
             x.domain == y.domain));
    for (auto [u, v] : {std::pair{x.value, y.value},
                        {x.ci_low, y.ci_low},
                        {x.ci_high, y.ci_high},
                        {x.baseline, y.baseline},
                        {x.n, y.n}}) {
      if (std::isnan(u)) {
        CHECK(std::isnan(v));
      } else if (exact) {
        CHECK(u == v);
      } else {
        CHECK(v == Approx(u).epsilon(1e-9).margin(1e-12));
      }
    }
  }
  CHECK(a.coactivation == b.coactivation);
  CHECK(a.transitions == b.transitions);
  CHECK(a.entropy_histogram.counts == b.entropy_histogram.counts);
  CHECK(a.entropy_histogram.layer_bins == b.entropy_histogram.layer_bins);
  for (size_t i = 0; i < a.entropy_histogram.edges.size(); ++i) {  // NaN pads compare equal
    const double x = a.entropy_histogram.edges[i], y = b.entropy_histogram.edges[i];
    CHECK((x == y || (std::isnan(x) && std::isnan(y))));
  }
  CHECK(a.margin_histogram.counts == b.margin_histogram.counts);
}

}  // namespace

TEST_CASE("vocabulary specialization on predicted tokens", "[stats]") {
  HandTrace t;
  // One layer, E = 4, K = 2. Every input token is id 1; what varies is the prediction:
  //   10 tokens on {0,1} predict 5                  -> x = 5: N = 10, all on e0, e1: v = 1
  //   10 tokens predict 6, 6 on {2,3} and 4 on {0,1} -> x = 6: e0 4, e1 4, e2 6, e3 6: v = 0.6,
  //                                                     argmax e2 (the lowest of the tie)
  //   3 tokens on {2,3} predict 7                   -> N = 3 < 10: filtered
  //   the last token has no prediction (-1)          -> counts nowhere
  // vocab_spec_predicted_mean = (1 + 0.6) / 2 = 0.8; per expert: e0 1.0, e2 0.6 (one x each).
  auto& d = t.Add("a", {}, {0, 1});
  auto token = [&](std::vector<int16_t> route, int32_t predicted) {
    d.ids.push_back(1);
    d.route.push_back(std::move(route));
    d.predicted.push_back(predicted);
  };
  for (int i = 0; i < 10; ++i) token({0, 1}, 5);
  for (int i = 0; i < 10; ++i)
    token(i < 6 ? std::vector<int16_t>{2, 3} : std::vector<int16_t>{0, 1}, 6);
  for (int i = 0; i < 3; ++i) token({2, 3}, 7);
  token({0, 1}, -1);
  const auto path = TempDir("stats-vocab-predicted") / "t.h5";
  t.Write(path);
  const StatsReport r = Stats({path});
  REQUIRE(r.has_vocabulary);
  const int all = 1;
  CHECK(r.vocab_predicted.kept_tokens == 2);
  CHECK(Value(r, Metric::kVocabSpecPredictedMean, 0, -1, all) == Approx(0.8));
  CHECK(r.Find(Metric::kVocabSpecPredictedMean, 0, -1, all)->n == 2);
  CHECK(Value(r, Metric::kVocabSpecPredicted, 0, 0, all) == Approx(1.0));
  CHECK(Value(r, Metric::kVocabSpecPredicted, 0, 2, all) == Approx(0.6));
  CHECK(r.Find(Metric::kVocabSpecPredicted, 0, 2, all)->n == 1);
  CHECK(std::isnan(Value(r, Metric::kVocabSpecPredicted, 0, 1, all)));
  // Domain rows: vocabulary metrics are for all domains only.
  CHECK(r.Find(Metric::kVocabSpecPredictedMean, 0, -1, 0) == nullptr);
  // The input table is unaffected: id 1 on 24 tokens, e0 and e1 on 15 of them.
  CHECK(Value(r, Metric::kVocabSpecInputMean, 0, -1, all) == Approx(15.0 / 24.0));
  // Top predicted tokens of expert 0: 5 (share 1) then 6 (share 0.4).
  const TopToken* top = r.vocab_predicted.top.data();
  CHECK(top[0].token == 5);
  CHECK(top[0].share == 1);
  CHECK(top[1].token == 6);
  CHECK(top[1].count == 4);
  CHECK(top[1].occurrences == 10);

  // Exported beside the other variants.
  const auto dir = TempDir("stats-vocab-predicted-out");
  ExportStats(dir, r, {});
  std::ifstream csv(dir / "top_tokens.csv");
  const std::string text((std::istreambuf_iterator<char>(csv)), {});
  CHECK_THAT(text, Catch::Contains("\n0,0,predicted,1,5,,10,10,1\n"));
  CHECK_THAT(text, Catch::Contains("\n0,2,predicted,1,6,,6,10,0.6\n"));
  std::ifstream stats_csv(dir / "stats.csv");
  const std::string rows((std::istreambuf_iterator<char>(stats_csv)), {});
  CHECK_THAT(rows, Catch::Contains(",vocab_spec_predicted_mean,0.8"));

  // A trace without predictions (an older moescope): the rows are absent, the rest unchanged.
  t.predictions = false;
  const auto old = TempDir("stats-vocab-predicted") / "old.h5";
  t.Write(old);
  const TraceSetInfo set = InspectTraces({old});
  CHECK_FALSE(set.predictions);
  CHECK_THAT(set.predictions_note, Catch::Contains("/tokens/predicted"));
  const StatsReport o = Stats({old});
  CHECK(o.Find(Metric::kVocabSpecPredictedMean, 0, -1, all) == nullptr);
  CHECK(o.Find(Metric::kVocabSpecPredicted, 0, 0, all) == nullptr);
  CHECK(Value(o, Metric::kVocabSpecInputMean, 0, -1, all) == Approx(15.0 / 24.0));

  // The accumulator refuses predictions outside the vocabulary.
  RoutingAccumulator acc({1, 1, 4, 2, 8, {}}, StatsOptions{}, {0});
  const int16_t ids[2] = {0, 1};
  const float w[2] = {0.5f, 0.5f};
  acc.BeginDocument(0, 0);
  CHECK_THROWS_WITH(acc.AddToken(1, ids, w, 2, nullptr, 8),
                    Catch::Contains("predicted token id 8"));
  CHECK_NOTHROW(acc.AddToken(1, ids, w, 2, nullptr, 7));
}

TEST_CASE("a trace split into two shards gives the statistics of the whole", "[stats]") {
  HandTrace t = RandomTrace();
  const auto dir = TempDir("stats-shards");
  t.Write(dir / "whole.h5");
  t.Write(dir / "part1.h5", 0, 17);
  t.Write(dir / "part2.h5", 17);
  StatsOptions o;
  o.bootstrap = 50;
  o.permutations = 50;
  o.rank_adjacent = true;
  const StatsReport whole = Stats({dir / "whole.h5"}, o);
  const StatsReport shards = Stats({dir / "part1.h5", dir / "part2.h5"}, o);
  CHECK(shards.tokens == whole.tokens);
  CHECK(shards.documents == 41);
  // One pass over the shards adds the same numbers in the same order: identical, CIs too.
  CheckSameRows(whole, shards, true);
  CHECK(whole.coactivation_adjacent == shards.coactivation_adjacent);

  SECTION("accumulators of separate shards merge to the whole") {
    const TraceSetInfo set = InspectTraces({dir / "whole.h5"});
    RoutingAccumulator first(set.shape, o, set.doc_domains), second(set.shape, o, set.doc_domains);
    const TraceReader reader(dir / "whole.h5");
    const int64_t n = reader.num_tokens();
    const TokenRows tokens = reader.ReadTokens(0, n);
    const RoutingRows routing = reader.ReadRouting(0, n);
    const LogitRows logits = reader.ReadRouterLogits(0, reader.num_logit_rows());
    // Documents 0..16 to the first, the rest to the second, fed in the reverse order.
    for (int pass = 1; pass >= 0; --pass)
      for (int64_t d = 0; d < reader.num_documents(); ++d) {
        if ((d < 17) != (pass == 0)) continue;
        RoutingAccumulator& acc = d < 17 ? first : second;
        const TraceDocument doc = reader.Document(d);
        acc.BeginDocument(d, doc.domain);
        for (int64_t i = doc.token_begin; i < doc.token_end; ++i)
          acc.AddToken(tokens.id[i], routing.ids.data() + i * 4, routing.weights.data() + i * 4, 2,
                       logits.logits.data() + i * 16);
        acc.EndDocument();
      }
    first.Merge(second);
    const StatsReport merged = BuildStatsReport(first, set.domains);
    CheckSameRows(whole, merged, false);
    CHECK(merged.vocab_input.expert_tokens == whole.vocab_input.expert_tokens);
  }
}

TEST_CASE("statistics refuse traces of different models and bad input", "[stats]") {
  HandTrace a = RandomTrace(), b;
  b.Add("x", {1, 2}, {0, 1});
  const auto dir = TempDir("stats-errors");
  a.Write(dir / "a.h5");
  b.Write(dir / "b.h5");
  CHECK_THROWS_WITH(InspectTraces({dir / "a.h5", dir / "b.h5"}),
                    Catch::Contains("b.h5") && Catch::Contains("num_layers"));
  CHECK_THROWS_WITH(InspectTraces({dir / "missing.h5"}), Catch::Contains("missing.h5"));
  RoutingAccumulator acc({1, 1, 4, 2, 8, {}}, StatsOptions{}, {0});
  const int16_t ids[2] = {0, 9};
  const float w[2] = {0.5f, 0.5f};
  acc.BeginDocument(0, 0);
  CHECK_THROWS_WITH(acc.AddToken(1, ids, w, 2, nullptr), Catch::Contains("expert 9"));
  CHECK_THROWS_WITH(acc.AddToken(99, ids, w, 2, nullptr), Catch::Contains("token id 99"));
}

TEST_CASE("every metric is documented in docs/stats-format.md, in output order", "[stats]") {
  std::ifstream in(std::string(MOESCOPE_SOURCE_DIR) + "/docs/stats-format.md");
  REQUIRE(in);
  const std::string doc((std::istreambuf_iterator<char>(in)), {});
  size_t previous = 0;
  for (const MetricDef& d : RoutingMetricDefs()) {
    INFO(d.name);
    const size_t at = doc.find(std::string("| `") + d.name + "` |");
    REQUIRE(at != std::string::npos);
    CHECK(at > previous);  // the files list metrics in the documented order
    previous = at;
  }
}

TEST_CASE("metrics are addressed by typed ids; names are parsed only at the edges", "[stats]") {
  REQUIRE(RoutingMetricDefs().size() == kMetricCount);
  for (size_t i = 0; i < kMetricCount; ++i) {
    const MetricDef& d = RoutingMetricDefs()[i];
    CHECK(MetricSlot(d.id) == i);
    CHECK(&DefOf(d.id) == &d);
    CHECK(std::string(d.name) == MetricName(d.id));
    CHECK(ParseMetric(d.name) == d.id);
    CHECK(ParseMetricName(d.name, "stats.csv") == d.id);
  }
  // The first and last of each level, as the files name them.
  CHECK(std::string(MetricName(Metric::kLoadCount)) == "load_count");
  CHECK(std::string(MetricName(Metric::kVocabSpecNext)) == "vocab_spec_next");
  CHECK(std::string(MetricName(Metric::kTokens)) == "tokens");
  CHECK(std::string(MetricName(Metric::kVocabSpecPredictedMean)) == "vocab_spec_predicted_mean");
  CHECK(std::string(MetricName(Metric::kVocabSpecPredicted)) == "vocab_spec_predicted");
  CHECK(DefOf(Metric::kVocabSpecPredicted).level == MetricLevel::kExpert);
  CHECK(DefOf(Metric::kVocabSpecPredictedMean).level == MetricLevel::kLayer);
  CHECK(DefOf(Metric::kVocabSpecNext).level == MetricLevel::kExpert);
  CHECK(DefOf(Metric::kTokens).level == MetricLevel::kLayer);
  CHECK_FALSE(ParseMetric("load").has_value());
  CHECK_THROWS_WITH(ParseMetricName("relative_lod", "stats.csv row 3"),
                    Catch::StartsWith("stats.csv row 3: unknown metric 'relative_lod'") &&
                        Catch::Contains("relative_load"));
}

TEST_CASE("vocabulary specialization intervals: bootstrap over kept token types", "[stats]") {
  // One layer, two experts, K = 1, vocabulary of 4; every token occurs 10 times.
  //   x=0: 10 x e0 -> v = 1.0;  x=1: 10 x e0 -> v = 1.0  (e0's tokens all have v = 1)
  //   x=2: 6 x e1, 4 x e0 -> v = 0.6;  x=3: 9 x e1, 1 x e0 -> v = 0.9  (e1: mean 0.75)
  const int L = 1, E = 2;
  const std::vector<uint32_t> table = {10, 0, 10, 0, 4, 6, 1, 9};  // [L, V, E]
  const std::vector<int64_t> occurrences = {10, 10, 10, 10};
  ExecutedSet e0, e1;
  e0.Insert(0);
  e1.Insert(1);
  const std::vector<ExecutedSetCounts> sets = {{{e0, 25}, {e1, 15}}};
  const VocabSpecialization with =
      ComputeVocabSpecialization(table, occurrences, sets, L, E, 10, 3, 7, 400, 0.95);
  CHECK(with.expert_mean[0] == Approx(1.0));
  CHECK(with.expert_ci_low[0] == Approx(1.0));  // identical values: a point interval
  CHECK(with.expert_ci_high[0] == Approx(1.0));
  CHECK(with.expert_mean[1] == Approx(0.75));
  // Resampling two values {0.6, 0.9}: means 0.6, 0.75 or 0.9, so the 95% interval is their range.
  CHECK(with.expert_ci_low[1] == Approx(0.6));
  CHECK(with.expert_ci_high[1] == Approx(0.9));
  CHECK(with.layer_ci_low[0] < with.layer_mean[0]);
  CHECK(with.layer_ci_high[0] > with.layer_mean[0]);
  const VocabSpecialization without =
      ComputeVocabSpecialization(table, occurrences, sets, L, E, 10, 3, 7);
  CHECK(std::isnan(without.expert_ci_low[1]));
  CHECK(without.expert_mean[1] == with.expert_mean[1]);
}
