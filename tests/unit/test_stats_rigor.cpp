// The inference around the routing statistics (docs/stats-format.md): Benjamini–Hochberg
// control of the false discovery rate on synthetic corpora with and without planted
// specialization, the load-matched and per-document repetition baselines, the repetition
// profile over distances, token-controlled specialization, and cluster-t intervals. The
// synthetic corpora are fed to the accumulator directly (no trace files), with seeded routing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/histogram.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/multiplicity.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/token_controlled.h"

using namespace moe;

namespace {

// One synthetic corpus: documents of `tokens` tokens; every token at every layer takes the
// experts `route` draws (K distinct, descending preference).
struct Synthetic {
  int domains = 4, docs_per_domain = 10, tokens = 60, layers = 2, experts = 8, top_k = 2;
  int vocab = 0;
  StatsShape Shape() const { return {domains, layers, experts, top_k, vocab, {}}; }
  std::vector<int16_t> Labels() const {
    std::vector<int16_t> labels;
    for (int m = 0; m < domains; ++m)
      for (int d = 0; d < docs_per_domain; ++d) labels.push_back(static_cast<int16_t>(m));
    return labels;
  }
};

// K distinct experts drawn without replacement with probabilities proportional to `weights`.
std::vector<int16_t> Draw(const std::vector<double>& weights, int k, std::mt19937_64& rng) {
  std::vector<double> w = weights;
  std::vector<int16_t> out;
  for (int j = 0; j < k; ++j) {
    std::discrete_distribution<int> pick(w.begin(), w.end());
    const int e = pick(rng);
    out.push_back(static_cast<int16_t>(e));
    w[static_cast<size_t>(e)] = 0;
  }
  return out;
}

// Feeds a corpus to `sink`: token ids from `token_of(domain, rng)`, routing from
// `weights_of(domain, layer, token)`.
template <typename TokenOf, typename WeightsOf>
void Feed(const Synthetic& s, uint64_t seed, TokenSink& sink, TokenOf token_of,
          WeightsOf weights_of) {
  std::mt19937_64 rng(seed);
  const std::vector<float> w(static_cast<size_t>(s.layers) * s.top_k, 0.5f);
  int64_t doc = 0;
  for (int m = 0; m < s.domains; ++m)
    for (int d = 0; d < s.docs_per_domain; ++d, ++doc) {
      sink.BeginDocument(doc, m);
      for (int t = 0; t < s.tokens; ++t) {
        const int32_t token = token_of(m, rng);
        std::vector<int16_t> ids;
        for (int l = 0; l < s.layers; ++l) {
          const std::vector<int16_t> set = Draw(weights_of(m, l, token), s.top_k, rng);
          ids.insert(ids.end(), set.begin(), set.end());
        }
        sink.AddToken(token, ids.data(), w.data(), s.top_k, nullptr);
      }
      sink.EndDocument();
    }
}

std::vector<std::string> Names(int m) {
  std::vector<std::string> names;
  for (int i = 0; i < m; ++i) names.push_back(std::string(1, 'd').append(std::to_string(i)));
  return names;
}

std::vector<const StatsRow*> RowsOf(const StatsReport& r, Metric metric) {
  std::vector<const StatsRow*> rows;
  for (const StatsRow& row : r.rows)
    if (row.metric == metric) rows.push_back(&row);
  return rows;
}

}  // namespace

TEST_CASE("Benjamini-Hochberg q-values follow the definition", "[stats][rigor]") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> p(37);
    for (double& v : p) v = u(rng) * u(rng);
    p[3] = p[5];                                      // a tie
    p[8] = std::numeric_limits<double>::quiet_NaN();  // not a test
    const std::vector<double> q = BenjaminiHochberg(p);
    // The definition: q_i = min over p_j >= p_i of m p_j / rank_j (rank among the m tests),
    // capped at 1; ties share the larger rank.
    const double m = 36;
    for (size_t i = 0; i < p.size(); ++i) {
      if (std::isnan(p[i])) {
        CHECK(std::isnan(q[i]));
        continue;
      }
      double expected = 1;
      for (size_t j = 0; j < p.size(); ++j) {
        if (std::isnan(p[j]) || p[j] < p[i]) continue;
        double rank = 0;
        for (double v : p) rank += !std::isnan(v) && v <= p[j];
        expected = std::min(expected, m * p[j] / rank);
      }
      CHECK(q[i] == Approx(expected).epsilon(1e-12));
    }
  }
  CHECK(PermutationsForFamily(336, 0.05, 200, 100000) == 6720);
  CHECK(PermutationsForFamily(10, 0.05, 200, 100000) == 200);
  CHECK(PermutationsForFamily(336, 0.01, 200, 1000) == 1000);
}

TEST_CASE(
    "Benjamini-Hochberg keeps the false discovery rate on null corpora and finds planted "
    "specialization",
    "[stats][rigor]") {
  Synthetic s;
  StatsOptions o;
  o.bootstrap = 0;
  o.vocabulary = false;
  o.fdr = 0.05;
  const std::vector<double> skewed = {8, 4, 3, 2, 2, 1, 1, 1};  // uneven load, all domains alike
  auto token = [](int, std::mt19937_64&) { return 0; };
  // 200 corpora where no domain routes differently: any discovery is false.
  int with_false = 0;
  double fdp_sum = 0;
  const int null_corpora = 200;
  for (int c = 0; c < null_corpora; ++c) {
    RoutingAccumulator acc(s.Shape(), o, s.Labels());
    Feed(s, 1000 + c, acc, token, [&](int, int, int) { return skewed; });
    const StatsReport r = BuildStatsReport(acc, Names(s.domains));
    REQUIRE(r.options.permutations == PermutationsForFamily(4 * 2 * 8, 0.05, 200, 1 << 30));
    const TestFamily& f = r.families.at(0);
    REQUIRE(f.metric == Metric::kDomainSpecPermPTopk);
    CHECK(f.tests == 64);
    with_false += f.discoveries > 0;
    fdp_sum += f.discoveries > 0 ? 1.0 : 0.0;  // all discoveries are false: FDP = 1 or 0
  }
  const double fdr = fdp_sum / null_corpora;
  // Under the global null the FDR is the chance of any discovery; BH keeps it at or below 0.05
  // (discrete permutation p-values make it conservative). Allowance: 3 binomial SEs.
  INFO("observed FDR over " << null_corpora << " null corpora: " << fdr);
  CHECK(fdr <= 0.05 + 3 * std::sqrt(0.05 * 0.95 / null_corpora));

  // Planted: domain 0 sends far more tokens to expert 6 at layer 1, domain 2 to expert 7 at
  // layer 0. The test must find them in at least 90% of corpora.
  int found = 0, planted = 0;
  for (int c = 0; c < 20; ++c) {
    RoutingAccumulator acc(s.Shape(), o, s.Labels());
    Feed(s, 5000 + c, acc, token, [&](int m, int l, int) {
      std::vector<double> w = skewed;
      if (m == 0 && l == 1) w[6] = 6;
      if (m == 2 && l == 0) w[7] = 6;
      return w;
    });
    const StatsReport r = BuildStatsReport(acc, Names(s.domains));
    for (auto [m, l, e] : {std::tuple{0, 1, 6}, {2, 0, 7}}) {
      const StatsRow* row = r.Find(Metric::kDomainSpecPermPTopk, l, e, m);
      REQUIRE(row != nullptr);
      ++planted;
      found += row->q <= o.fdr;
    }
  }
  INFO("planted cells found: " << found << " of " << planted);
  CHECK(found >= 0.9 * planted);
}

TEST_CASE("the load-matched repetition baseline equals the repetition of independent tokens",
          "[stats][rigor]") {
  Synthetic s;
  s.domains = 1;
  s.docs_per_domain = 40;
  s.tokens = 400;
  StatsOptions o;
  o.bootstrap = 400;
  o.permutations = 0;
  o.vocabulary = false;
  RoutingAccumulator acc(s.Shape(), o, {});
  const std::vector<double> skewed = {10, 5, 3, 2, 1, 1, 0.5, 0.5};
  Feed(
      s, 11, acc, [](int, std::mt19937_64&) { return 0; }, [&](int, int, int) { return skewed; });
  const StatsReport r = BuildStatsReport(acc, Names(1));
  for (int l = 0; l < s.layers; ++l) {
    const StatsRow* first = r.Find(Metric::kRepeatFirst, l, -1, 1);
    REQUIRE(first != nullptr);
    // Far from uniform (1/E = 0.125) ...
    CHECK(first->baseline > 0.2);
    // ... and the observed rate of independent tokens agrees with Σ f² within its interval.
    CHECK(first->ci_low <= first->baseline);
    CHECK(first->baseline <= first->ci_high);
    CHECK(first->value == Approx(first->baseline).margin(0.02));
    for (Metric lift :
         {Metric::kRepeatFirstLiftLoad, Metric::kRepeatFirstLiftDoc, Metric::kRepeatOverlapLiftLoad,
          Metric::kRepeatOverlapLiftDoc, Metric::kRepeatAnyLiftDoc}) {
      const StatsRow* row = r.Find(lift, l, -1, 1);
      REQUIRE(row != nullptr);
      INFO(MetricName(lift) << " = " << row->value << " [" << row->ci_low << ", " << row->ci_high
                            << "]");
      CHECK(row->value == Approx(1).margin(0.06));
      CHECK(row->ci_low <= 1.0);
      CHECK(1.0 <= row->ci_high);
      CHECK(row->docs == 40);
    }
  }
}

TEST_CASE("per-document repetition baselines and the distance profile are exact",
          "[stats][rigor]") {
  // One document whose first choice cycles with period 4 (0 1 2 3 0 1 2 3 ...) and a second
  // choice fixed at expert 7: same first choice at distances 4, 8, ... only.
  const int n = 200;
  StatsShape shape{1, 1, 8, 2, 0, {}};
  StatsOptions o;
  o.bootstrap = 0;
  o.permutations = 0;
  o.vocabulary = false;
  RoutingAccumulator acc(shape, o, {});
  acc.BeginDocument(0, 0);
  std::vector<int16_t> firsts;
  const float w[2] = {0.6f, 0.4f};
  for (int t = 0; t < n; ++t) {
    const int16_t ids[2] = {static_cast<int16_t>(t % 4), 7};
    firsts.push_back(ids[0]);
    acc.AddToken(0, ids, w, 2, nullptr);
  }
  acc.EndDocument();
  const StatsReport r = BuildStatsReport(acc, Names(1));
  CHECK(r.Find(Metric::kRepeatFirst, 0, -1, 0)->value == 0);
  CHECK(r.Find(Metric::kRepeatFirstD2, 0, -1, 0)->value == 0);
  CHECK(r.Find(Metric::kRepeatFirstD4, 0, -1, 0)->value == 1);
  CHECK(r.Find(Metric::kRepeatFirstD64, 0, -1, 0)->value == 1);
  CHECK(r.Find(Metric::kRepeatFirstD4, 0, -1, 0)->n == n - 4);
  // The document-shuffle expectation by brute force: the chance that two distinct positions
  // share a first choice, times the n - 1 adjacent pairs.
  double same = 0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) same += a != b && firsts[a] == firsts[b];
  const double expected_same = same / (n * (n - 1.0)) * (n - 1);
  CHECK(r.Find(Metric::kRepeatFirstLiftDoc, 0, -1, 0)->value == 0);
  // Every pair shares expert 7: overlap 1 per pair observed; the shuffle expects
  // 1 + P[same first] per pair.
  const double expected_overlap = (n - 1) + expected_same;
  CHECK(r.Find(Metric::kRepeatOverlapLiftDoc, 0, -1, 0)->value ==
        Approx((n - 1) / expected_overlap).epsilon(1e-12));
  CHECK(r.Find(Metric::kRepeatAnyLiftDoc, 0, -1, 0)->value == Approx(1.0).epsilon(1e-12));
  // The load-matched baseline: first-choice shares are 1/4 each, Σ f² = 1/4.
  CHECK(r.Find(Metric::kRepeatFirst, 0, -1, 0)->baseline == Approx(0.25).epsilon(1e-12));
}

TEST_CASE("executed-set statistics hold at 256 experts (brute force)", "[stats][rigor]") {
  // Random top-16 sets over 256 experts, drawn from a small pool so that sets repeat and meet:
  // the any-overlap lift and its document-shuffle baseline by brute force, and the shuffled
  // vocabulary baseline, which draws whole sets (experts above 63 included).
  const int E = 256, K = 16, n = 300;
  std::mt19937 rng(11);
  std::vector<std::vector<int16_t>> pool;
  for (int p = 0; p < 12; ++p) {
    std::vector<int16_t> experts(E);
    for (int e = 0; e < E; ++e) experts[e] = static_cast<int16_t>(e);
    std::shuffle(experts.begin(), experts.end(), rng);
    pool.emplace_back(experts.begin(), experts.begin() + K);
  }
  StatsShape shape{1, 1, E, K, 4, {}};
  StatsOptions o;
  o.bootstrap = 0;
  o.permutations = 0;
  o.vocab_min_count = 1;
  RoutingAccumulator acc(shape, o, {});
  acc.BeginDocument(0, 0);
  std::vector<std::vector<int16_t>> sets;
  const std::vector<float> w(K, 1.0f / K);
  for (int t = 0; t < n; ++t) {
    sets.push_back(pool[rng() % pool.size()]);
    acc.AddToken(t % 4, sets.back().data(), w.data(), K, nullptr);
  }
  acc.EndDocument();
  auto meet = [](const std::vector<int16_t>& a, const std::vector<int16_t>& b) {
    for (int16_t x : a)
      if (std::find(b.begin(), b.end(), x) != b.end()) return true;
    return false;
  };
  double adjacent = 0, ordered = 0;
  for (int t = 0; t + 1 < n; ++t) adjacent += meet(sets[t], sets[t + 1]);
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) ordered += a != b && meet(sets[a], sets[b]);
  const double expected = ordered / n;  // (n - 1) adjacent pairs x P[two distinct tokens meet]
  const StatsReport r = BuildStatsReport(acc, Names(1));
  CHECK(r.Find(Metric::kRepeatAnyLiftDoc, 0, -1, 0)->value ==
        Approx(adjacent / expected).epsilon(1e-12));
  REQUIRE(acc.set_counts().size() == 1);
  CHECK(acc.set_counts()[0].size() <= pool.size());
  int64_t counted = 0;
  for (const auto& [set, count] : acc.set_counts()[0]) counted += count;
  CHECK(counted == n);
  // Shuffled vocabulary baseline: finite and at least the largest single-expert share a
  // uniform draw of whole sets can give (1 / number of distinct sets seen).
  const double shuffled = r.Find(Metric::kVocabSpecInputMean, 0, -1, 1)->baseline;
  CHECK(std::isfinite(shuffled));
  CHECK(shuffled > 0);
  CHECK(shuffled <= 1);
}

TEST_CASE("token-controlled specialization is null when domains differ only in token mix",
          "[stats][rigor]") {
  Synthetic s;
  s.vocab = 40;
  s.docs_per_domain = 12;
  StatsOptions o;
  o.bootstrap = 0;
  o.permutations = 0;
  // Each token id prefers one expert, shared by ids of its block of ten; domain m draws its
  // tokens mostly from block m (ids 10m..10m+9), so raw specialization is strong.
  auto token = [](int m, std::mt19937_64& rng) {
    std::uniform_int_distribution<int> own(10 * m, 10 * m + 9), any(0, 39);
    std::bernoulli_distribution mostly(0.8);
    return mostly(rng) ? own(rng) : any(rng);
  };
  auto by_token = [](int, int l, int x) {
    std::vector<double> w(8, 1.0);
    w[static_cast<size_t>((2 * (x / 10) + x % 2 + 3 * l) % 8)] = 8;  // ids of a block alike
    return w;
  };
  auto run = [&](auto weights, uint64_t seed) {
    RoutingAccumulator acc(s.Shape(), o, s.Labels());
    Feed(s, seed, acc, token, weights);
    TokenControlledPass pass(acc);
    Feed(s, seed, pass, token, weights);  // the same corpus again (same seed)
    return BuildStatsReport(acc, Names(s.domains), &pass);
  };
  const StatsReport null_report = run(by_token, 21);
  int raw_strong = 0, controlled_discoveries = 0, cells = 0;
  for (const StatsRow* row : RowsOf(null_report, Metric::kDomainSpecLiftTopk))
    raw_strong += std::abs(row->value - 1) > 0.3;
  for (const StatsRow* row : RowsOf(null_report, Metric::kDomainSpecTokenP)) {
    ++cells;
    controlled_discoveries += row->q <= 0.05;
  }
  const auto lifts = RowsOf(null_report, Metric::kDomainSpecLiftToken);
  double worst = 0;
  for (const StatsRow* row : lifts) worst = std::max(worst, std::abs(row->value - 1));
  INFO("raw |lift - 1| > 0.3 in " << raw_strong << " cells; token-controlled discoveries "
                                  << controlled_discoveries << " of " << cells
                                  << "; largest |token lift - 1| " << worst);
  CHECK(raw_strong >= 8);
  CHECK(controlled_discoveries <= 0.05 * cells + 1);

  // Now domain 1 also favours expert 5 at layer 0 whatever the token: the control must see it.
  const StatsReport planted = run(
      [&](int m, int l, int x) {
        std::vector<double> w = by_token(m, l, x);
        if (m == 1 && l == 0) w[5] += 6;
        return w;
      },
      22);
  const StatsRow* lift = planted.Find(Metric::kDomainSpecLiftToken, 0, 5, 1);
  const StatsRow* test = planted.Find(Metric::kDomainSpecTokenP, 0, 5, 1);
  REQUIRE(lift != nullptr);
  REQUIRE(test != nullptr);
  INFO("planted token-controlled lift " << lift->value << " [" << lift->ci_low << ", "
                                        << lift->ci_high << "], q " << test->q);
  CHECK(lift->ci_low > 1.0);
  CHECK(test->q <= 0.05);
}

TEST_CASE("cluster-t intervals: t quantiles, small-sample widening and the minimum of documents",
          "[stats][rigor]") {
  CHECK(StudentTQuantile(1e9, 0.95) == Approx(1.959964).epsilon(1e-6));
  CHECK(StudentTQuantile(7, 0.95) == Approx(2.364624).epsilon(1e-6));
  // sd of {1, 3} is sqrt(2); G = 8: half = t_7 * sqrt(8/7) * sqrt(2).
  const std::vector<double> reps = {1, 3};
  const ClusterInterval ci = ClusterTInterval(2, reps, 8, 0.95);
  const double half = 2.364624 * std::sqrt(8.0 / 7.0) * std::sqrt(2.0);
  CHECK(ci.high - 2 == Approx(half).epsilon(1e-6));
  CHECK(2 - ci.low == Approx(half).epsilon(1e-6));
  CHECK(ci.mc_error == Approx(half / std::sqrt(2.0)).epsilon(1e-6));
  CHECK(std::isnan(ClusterTInterval(2, reps, 1, 0.95).low));

  // Rows of domains with fewer documents than min_documents carry no interval.
  Synthetic s;
  s.docs_per_domain = 4;
  StatsOptions o;
  o.bootstrap = 50;
  o.permutations = 0;
  o.vocabulary = false;
  o.min_documents = 5;
  RoutingAccumulator acc(s.Shape(), o, {});
  Feed(
      s, 3, acc, [](int, std::mt19937_64&) { return 0; },
      [](int, int, int) { return std::vector<double>(8, 1.0); });
  const StatsReport r = BuildStatsReport(acc, Names(s.domains));
  const StatsRow* domain_row = r.Find(Metric::kTokenCoverage, 0, 0, 0);
  const StatsRow* all_row = r.Find(Metric::kTokenCoverage, 0, 0, s.domains);
  CHECK(domain_row->docs == 4);
  CHECK(std::isnan(domain_row->ci_low));
  CHECK(all_row->docs == 16);
  CHECK(all_row->ci_low < all_row->value);
  CHECK(all_row->value < all_row->ci_high);
}

TEST_CASE("quantile histogram bins hold about equal counts whatever the range of the data",
          "[stats][rigor]") {
  // Margins spread over [0, 0.1) as the bundled model's deeper layers have them, and a second
  // layer with margins up to 10: fixed bins over [0, 4) would put all of layer 0 in one bin.
  const LogGrid& g = kMarginGrid;
  const int rows = 2, layers = 2, bins = 10;  // row 1: the reference (all domains)
  std::vector<int64_t> fine(static_cast<size_t>(rows) * layers * g.size(), 0);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> small(0, 0.1), wide(0, 10);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    for (int r = 0; r < rows; ++r) {
      ++fine[(static_cast<size_t>(r) * layers + 0) * g.size() + g.Bin(small(rng))];
      ++fine[(static_cast<size_t>(r) * layers + 1) * g.size() + g.Bin(wide(rng))];
    }
  }
  const QuantileHistogram h = QuantileBins(fine, rows, layers, g, bins, 1);
  for (int l = 0; l < layers; ++l) {
    INFO("layer " << l);
    REQUIRE(h.layer_bins[static_cast<size_t>(l)] == bins);
    const double* edges = h.edges.data() + static_cast<size_t>(l) * (h.bins + 1);
    CHECK(edges[bins] <= (l == 0 ? 0.11 : 11.0));  // the range ends where the data ends
    int64_t total = 0;
    for (int b = 0; b < bins; ++b) {
      CHECK(edges[b] < edges[b + 1]);
      const int64_t c = h.counts[(static_cast<size_t>(1) * layers + l) * h.bins + b];
      total += c;
      // Equal shares up to the fine grid's resolution (30 bins per decade: a fine bin near the
      // top of a uniform range holds up to 8% of the values).
      CHECK(c == Approx(n / bins).epsilon(0.5));
    }
    CHECK(total == n);
  }
}
