#include "analysis/stats/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <tuple>

#include "analysis/stats/multiplicity.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/token_controlled.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

bool IsPermutationP(Metric m) {
  return m == Metric::kDomainSpecPermPTopk || m == Metric::kDomainSpecPermPTop1;
}
bool IsTokenControlled(Metric m) {
  return m == Metric::kDomainSpecLiftToken || m == Metric::kDomainSpecTokenP;
}
bool IsVocabulary(Metric m) {
  return m == Metric::kVocabSpecInput || m == Metric::kVocabSpecNext ||
         m == Metric::kVocabSpecPredicted || m == Metric::kVocabSpecInputMean ||
         m == Metric::kVocabSpecNextMean || m == Metric::kVocabSpecPredictedMean;
}
// The metrics that are functions of one slice (bootstrapped).
bool FromSlice(Metric m) {
  return !IsPermutationP(m) && !IsVocabulary(m) && !IsTokenControlled(m);
}
bool NeedsLogits(Metric m) {
  return m == Metric::kSoftLoadDerived || m == Metric::kRouterEntropyDerived ||
         m == Metric::kRouterEntropyNormDerived || m == Metric::kTopkMassDerived ||
         m == Metric::kMarginLogit || m == Metric::kZLossDerived;
}
bool DomainRowsOnly(Metric m) {
  return m == Metric::kDomainSpecTopk || m == Metric::kDomainSpecLiftTopk ||
         m == Metric::kDomainSpecTop1 || m == Metric::kDomainSpecLiftTop1 || IsPermutationP(m) ||
         IsTokenControlled(m);
}

double Choose(int n, int k) {
  if (k < 0 || k > n) return 0;
  double c = 1;
  for (int i = 1; i <= k; ++i) c = c * (n - k + i) / i;
  return c;
}

// Where each slice metric's [L, E or 1] values sit in a flat vector.
struct Cells {
  std::vector<size_t>
      offset;  // per metric in RoutingMetricDefs(); SIZE_MAX for metrics not from slices
  size_t size = 0;
  int L = 0, E = 0;
  Cells(int layers, int experts) : L(layers), E(experts) {
    for (const MetricDef& d : RoutingMetricDefs()) {
      if (!FromSlice(d.id)) {
        offset.push_back(SIZE_MAX);
        continue;
      }
      offset.push_back(size);
      size += static_cast<size_t>(L) * (d.level == MetricLevel::kExpert ? E : 1);
    }
  }
  size_t At(Metric metric, int l, int e) const {
    const size_t m = MetricSlot(metric);
    const bool expert = RoutingMetricDefs()[m].level == MetricLevel::kExpert;
    return offset[m] + static_cast<size_t>(l) * (expert ? E : 1) + (expert ? e : 0);
  }
};

// Values of every slice metric of one slice.
struct SliceEval {
  std::vector<double> value, baseline, n;
};

void Evaluate(const double* s, const SliceLayout& lay, const StatsShape& shape, const Cells& cells,
              bool want_baselines, SliceEval& out) {
  const int L = shape.layers, E = shape.experts;
  const double K = shape.top_k, N = s[SliceLayout::kTokens], pairs = s[SliceLayout::kPairs],
               R = s[SliceLayout::kLogitRows];
  out.value.assign(cells.size, kNan);
  if (want_baselines) {
    out.baseline.assign(cells.size, kNan);
    out.n.assign(cells.size, kNan);
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : kNan; };
  auto put = [&](Metric metric, int l, int e, double v, double base, double n) {
    const size_t at = cells.At(metric, l, e);
    out.value[at] = v;
    if (want_baselines) {
      out.baseline[at] = base;
      out.n[at] = n;
    }
  };
  using enum Metric;
  const int k = shape.top_k;
  const double any_baseline = 1.0 - Choose(E - k, k) / Choose(E, k);
  for (int l = 0; l < L; ++l) {
    const double* c = s + lay.count_topk() + lay.Cell(l, 0);
    const double* c1 = s + lay.count_top1() + lay.Cell(l, 0);
    const double* imp = s + lay.importance() + lay.Cell(l, 0);
    const double* soft = s + lay.soft_load() + lay.Cell(l, 0);
    double total_c = 0, total_i = 0, max_c = 0, dead = 0;
    for (int e = 0; e < E; ++e) {
      total_c += c[e];
      total_i += imp[e];
      max_c = std::max(max_c, c[e]);
      dead += c[e] == 0;
    }
    for (int e = 0; e < E; ++e) {
      const double cov = ratio(c[e], N), cov1 = ratio(c1[e], N);
      put(kLoadCount, l, e, c[e], N * K / E, N);
      put(kAssignmentShare, l, e, ratio(c[e], N * K), 1.0 / E, N);
      put(kTokenCoverage, l, e, cov, K / E, N);
      put(kRelativeLoad, l, e, ratio(c[e], N * K / E), 1.0, N);
      put(kImportance, l, e, imp[e], total_i / E, N);
      put(kImportanceShare, l, e, ratio(imp[e], total_i), 1.0 / E, N);
      put(kTop1Share, l, e, cov1, 1.0 / E, N);
      put(kDead, l, e, N > 0 ? (c[e] == 0 ? 1.0 : 0.0) : kNan, 0.0, N);
      put(kSoftLoadDerived, l, e, ratio(soft[e], R), 1.0 / E, R);
      put(kDomainSpecTopk, l, e, cov, K / E, N);
      put(kDomainSpecLiftTopk, l, e, cov / (K / E), 1.0, N);
      put(kDomainSpecTop1, l, e, cov1, 1.0 / E, N);
      put(kDomainSpecLiftTop1, l, e, cov1 * E, 1.0, N);
    }
    auto cv = [&](const double* v, double& unbiased) {
      double mean = 0, ss = 0;
      for (int e = 0; e < E; ++e) mean += v[e];
      mean /= E;
      for (int e = 0; e < E; ++e) ss += (v[e] - mean) * (v[e] - mean);
      unbiased = E > 1 ? std::sqrt(ss / (E - 1) / (mean * mean + 1e-10)) : kNan;
      return mean > 0 ? std::sqrt(ss / E) / mean : kNan;
    };
    double cv_u = 0, cvi_u = 0;
    const double cv_c = N > 0 ? cv(c, cv_u) : kNan, cv_i = N > 0 ? cv(imp, cvi_u) : kNan;
    if (!(N > 0)) cv_u = cvi_u = kNan;
    const double mean_c = total_c / E;
    double entropy = kNan;
    if (total_c > 0) {
      entropy = 0;
      for (int e = 0; e < E; ++e)
        if (c[e] > 0) entropy -= c[e] / total_c * std::log(c[e] / total_c);
    }
    put(kTokens, l, 0, N, kNan, N);
    put(kCvLoad, l, 0, cv_c, 0.0, N);
    put(kCvLoadUnbiased, l, 0, cv_u, 0.0, N);
    put(kCvImportance, l, 0, cv_i, 0.0, N);
    put(kCvImportanceUnbiased, l, 0, cvi_u, 0.0, N);
    put(kMaxOverMean, l, 0, ratio(max_c, mean_c), 1.0, N);
    put(kMaxvio, l, 0, ratio(max_c, mean_c) - 1.0, 0.0, N);
    put(kDeadFraction, l, 0, N > 0 ? dead / E : kNan, 0.0, N);
    put(kLoadEntropy, l, 0, entropy, std::log(static_cast<double>(E)), N);
    put(kDiversity, l, 0, std::exp(entropy) / E, 1.0, N);
    const double log_e = std::log(static_cast<double>(E));
    put(kRouterEntropyDerived, l, 0, ratio(s[lay.entropy() + l], R), log_e, R);
    put(kRouterEntropyNormDerived, l, 0, ratio(s[lay.entropy() + l], R) / log_e, 1.0, R);
    put(kTopkMassDerived, l, 0, ratio(s[lay.topk_mass() + l], R), K / E, R);
    put(kMarginLogit, l, 0, ratio(s[lay.margin() + l], s[lay.margin_rows() + l]), kNan,
        s[lay.margin_rows() + l]);
    put(kZLossDerived, l, 0, ratio(s[lay.z_loss() + l], R), kNan, R);
    // Repetition (§2.8) against the load-matched baseline: two independent tokens of this row
    // share a first choice with probability Σ f², and share Σ cov² experts on average.
    double first_sq = kNan, cover_sq = kNan;
    if (N > 0) {
      first_sq = cover_sq = 0;
      for (int e = 0; e < E; ++e) {
        first_sq += (c1[e] / N) * (c1[e] / N);
        cover_sq += (c[e] / N) * (c[e] / N);
      }
    }
    const double same = s[lay.same_first() + l], overlap = s[lay.overlap() + l];
    const double first_rate = ratio(same, pairs), overlap_rate = ratio(overlap, pairs);
    put(kRepeatFirst, l, 0, first_rate, first_sq, pairs);
    put(kRepeatAny, l, 0, ratio(s[lay.any_overlap() + l], pairs), any_baseline, pairs);
    put(kRepeatOverlap, l, 0, overlap_rate, cover_sq, pairs);
    put(kRepeatFirstLiftLoad, l, 0, ratio(first_rate, first_sq), 1.0, pairs);
    put(kRepeatFirstLiftDoc, l, 0, ratio(same, s[lay.doc_same_first() + l]), 1.0, pairs);
    put(kRepeatAnyLiftDoc, l, 0,
        E <= kMaxSetExperts ? ratio(s[lay.any_overlap() + l], s[lay.doc_any_overlap() + l]) : kNan,
        1.0, pairs);
    put(kRepeatOverlapLiftLoad, l, 0, ratio(overlap_rate, cover_sq), 1.0, pairs);
    put(kRepeatOverlapLiftDoc, l, 0, ratio(overlap, s[lay.doc_overlap() + l]), 1.0, pairs);
    for (int i = 0; i < kRepeatDistanceCount; ++i) {
      const Metric at_distance = static_cast<Metric>(MetricSlot(kRepeatFirstD2) + i);
      const double d_pairs = s[lay.pairs_at() + i];
      put(at_distance, l, 0, ratio(s[lay.same_first_at() + l * kRepeatDistanceCount + i], d_pairs),
          first_sq, d_pairs);
    }
  }
}

// Slice of row r (a domain, or the sum of all domains when r == M) of a replicate family.
template <typename Get>
void RowSlice(int r, int M, size_t size, Get get, std::vector<double>& out) {
  out.assign(size, 0.0);
  for (int m = 0; m < M; ++m) {
    if (r != M && m != r) continue;
    const std::span<const double> s = get(m);
    for (size_t i = 0; i < size; ++i) out[i] += s[i];
  }
}

// The rows of the slice metrics of domain row r (M: all domains): point values from the row's
// slice, percentile intervals from its bootstrap replicates.
void AddSliceRows(const RoutingAccumulator& acc, const Cells& cells, int r, StatsReport& rep) {
  const StatsShape& shape = acc.shape();
  const SliceLayout& lay = acc.layout();
  const int M = shape.domains, B = acc.options().bootstrap;
  const size_t S = lay.size();
  std::vector<double> slice;
  SliceEval point, rep_eval;
  RowSlice(
      r, M, S, [&](int m) { return acc.Slice(m); }, slice);
  Evaluate(slice.data(), lay, shape, cells, true, point);
  const int64_t docs = static_cast<int64_t>(slice[SliceLayout::kDocs]);
  std::vector<double> replicate_values(static_cast<size_t>(B) * cells.size, kNan);
  for (int b = 0; b < B; ++b) {
    RowSlice(
        r, M, S, [&](int m) { return acc.BootstrapSlice(b, m); }, slice);
    Evaluate(slice.data(), lay, shape, cells, false, rep_eval);
    std::copy(rep_eval.value.begin(), rep_eval.value.end(),
              replicate_values.begin() + static_cast<size_t>(b) * cells.size);
  }
  std::vector<double> column(static_cast<size_t>(B));
  for (const MetricDef& d : RoutingMetricDefs()) {
    if (!FromSlice(d.id) || (NeedsLogits(d.id) && !rep.has_logits) ||
        (DomainRowsOnly(d.id) && r == M))
      continue;
    const bool expert = d.level == MetricLevel::kExpert;
    for (int l = 0; l < shape.layers; ++l)
      for (int e = 0; e < (expert ? shape.experts : 1); ++e) {
        const size_t at = cells.At(d.id, l, e);
        StatsRow row{.layer = l,
                     .expert = expert ? e : -1,
                     .domain = r,
                     .metric = d.id,
                     .value = point.value[at],
                     .ci_low = kNan,
                     .ci_high = kNan,
                     .baseline = point.baseline[at],
                     .n = point.n[at]};
        row.docs = docs;
        if (B > 1 && docs >= acc.options().min_documents) {
          for (int b = 0; b < B; ++b)
            column[b] = replicate_values[static_cast<size_t>(b) * cells.size + at];
          const ClusterInterval ci =
              ClusterTInterval(row.value, column, docs, acc.options().ci_level);
          row.ci_low = ci.low;
          row.ci_high = ci.high;
          row.ci_mc_error = ci.mc_error;
        }
        rep.rows.push_back(row);
      }
  }
}

// Permutation p-values of domain specialization (§2.4) of domain r < M; `all` is the slice of
// all domains.
void AddPermutationRows(const RoutingAccumulator& acc, const std::vector<double>& all, int r,
                        StatsReport& rep) {
  const StatsShape& shape = acc.shape();
  const SliceLayout& lay = acc.layout();
  const int P = acc.options().permutations;
  std::vector<double> slice;
  RowSlice(
      r, shape.domains, lay.size(), [&](int m) { return acc.Slice(m); }, slice);
  for (const Metric metric : {Metric::kDomainSpecPermPTopk, Metric::kDomainSpecPermPTop1}) {
    const size_t block =
        metric == Metric::kDomainSpecPermPTopk ? lay.count_topk() : lay.count_top1();
    const double N = slice[SliceLayout::kTokens], N_all = all[SliceLayout::kTokens];
    for (int l = 0; l < shape.layers; ++l)
      for (int e = 0; e < shape.experts; ++e) {
        const size_t i = block + lay.Cell(l, e);
        const double overall = N_all > 0 ? all[i] / N_all : kNan;
        const double observed = N > 0 ? std::abs(slice[i] / N - overall) : kNan;
        int at_least = 0;
        for (int p = 0; p < P; ++p) {
          const std::span<const double> ps = acc.PermutationSlice(p, r);
          const double n = ps[SliceLayout::kTokens];
          const double stat = n > 0 ? std::abs(ps[i] / n - overall) : 0.0;
          at_least += stat >= observed - 1e-12;
        }
        const double pvalue = N > 0 ? (1.0 + at_least) / (1.0 + P) : kNan;
        StatsRow row{l, e, r, metric, pvalue, kNan, kNan, kNan, N};
        row.docs = static_cast<int64_t>(slice[SliceLayout::kDocs]);
        rep.rows.push_back(row);
      }
  }
}

// Benjamini–Hochberg over every cell of each p-value metric, one family per metric.
void CorrectFamilies(StatsReport& rep) {
  for (const Metric metric :
       {Metric::kDomainSpecPermPTopk, Metric::kDomainSpecPermPTop1, Metric::kDomainSpecTokenP}) {
    std::vector<StatsRow*> rows;
    std::vector<double> p;
    for (StatsRow& row : rep.rows)
      if (row.metric == metric) {
        rows.push_back(&row);
        p.push_back(row.value);
      }
    if (rows.empty()) continue;
    const std::vector<double> q = BenjaminiHochberg(p);
    TestFamily family{.metric = metric, .fdr = rep.options.fdr};
    if (IsPermutationP(metric)) {
      family.permutations = rep.options.permutations;
      family.min_p = 1.0 / (1.0 + family.permutations);
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i]->q = q[i];
      family.tests += !std::isnan(p[i]);
      family.discoveries += q[i] <= family.fdr;
    }
    rep.families.push_back(family);
  }
}

// Vocabulary specialization (§2.5), all domains.
void AddVocabularyRows(const RoutingAccumulator& acc, StatsReport& rep) {
  const StatsOptions& opt = acc.options();
  const int M = acc.shape().domains, L = acc.shape().layers, E = acc.shape().experts;
  rep.vocab_input = ComputeVocabSpecialization(
      acc.vocab_input(), acc.input_occurrences(), acc.set_counts(), L, E, opt.vocab_min_count,
      opt.top_tokens, opt.seed, opt.bootstrap, opt.ci_level);
  rep.vocab_next = ComputeVocabSpecialization(
      acc.vocab_next(), acc.next_occurrences(), acc.set_counts(), L, E, opt.vocab_min_count,
      opt.top_tokens, opt.seed + 1, opt.bootstrap, opt.ci_level);
  // Predicted tokens: only when the traces record them (the rows are absent otherwise).
  if (!acc.vocab_predicted().empty())
    rep.vocab_predicted = ComputeVocabSpecialization(
        acc.vocab_predicted(), acc.predicted_occurrences(), acc.set_counts(), L, E,
        opt.vocab_min_count, opt.top_tokens, opt.seed + 2, opt.bootstrap, opt.ci_level);
  struct Table {
    const VocabSpecialization* v;
    Metric expert_metric, layer_metric;
  };
  for (const Table& t :
       {Table{&rep.vocab_input, Metric::kVocabSpecInput, Metric::kVocabSpecInputMean},
        Table{&rep.vocab_next, Metric::kVocabSpecNext, Metric::kVocabSpecNextMean},
        Table{&rep.vocab_predicted, Metric::kVocabSpecPredicted,
              Metric::kVocabSpecPredictedMean}}) {
    const VocabSpecialization& v = *t.v;
    if (v.layers == 0) continue;  // no predictions
    for (int l = 0; l < L; ++l) {
      for (int e = 0; e < E; ++e) {
        const size_t cell = static_cast<size_t>(l) * E + e;
        rep.rows.push_back({l, e, M, t.expert_metric, v.expert_mean[cell], v.expert_ci_low[cell],
                            v.expert_ci_high[cell], v.expert_shuffled[cell],
                            static_cast<double>(v.expert_tokens[cell])});
      }
      rep.rows.push_back({l, -1, M, t.layer_metric, v.layer_mean[l], v.layer_ci_low[l],
                          v.layer_ci_high[l], v.layer_shuffled[l],
                          static_cast<double>(v.kept_tokens)});
    }
  }
}

}  // namespace

const StatsRow* StatsReport::Find(Metric metric, int layer, int expert, int domain) const {
  for (const StatsRow& r : rows)
    if (r.metric == metric && r.layer == layer && r.expert == expert && r.domain == domain)
      return &r;
  return nullptr;
}

StatsReport BuildStatsReport(const RoutingAccumulator& acc, std::vector<std::string> domains,
                             const TokenControlledPass* token_controlled) {
  const StatsShape& shape = acc.shape();
  const int M = shape.domains;
  if (static_cast<int>(domains.size()) != M)
    Fail("routing statistics", "domain names do not match the statistics");
  StatsReport rep;
  rep.shape = shape;
  rep.options = acc.options();
  rep.domains = std::move(domains);
  rep.documents = acc.documents();
  rep.tokens = acc.tokens();
  const Cells cells(shape.layers, shape.experts);

  std::vector<double> all;
  RowSlice(
      M, M, acc.layout().size(), [&](int m) { return acc.Slice(m); }, all);
  rep.has_logits = all[SliceLayout::kLogitRows] > 0;
  for (int r = 0; r <= M; ++r) {
    AddSliceRows(acc, cells, r, rep);
    if (r < M && rep.options.permutations > 0) AddPermutationRows(acc, all, r, rep);
  }
  rep.has_vocabulary = !acc.vocab_input().empty();
  if (rep.has_vocabulary) AddVocabularyRows(acc, rep);
  if (token_controlled != nullptr) token_controlled->AddRows(rep.options, rep);
  // Dense layers have no router: none of their rows describes routing, and their p-values must
  // not enter a test family.
  std::erase_if(rep.rows,
                [&](const StatsRow& r) { return r.layer >= 0 && !shape.Routes(r.layer); });
  CorrectFamilies(rep);

  // Matrices with an "all domains" row appended.
  auto with_all = [M](const std::vector<int64_t>& per_domain) {
    if (per_domain.empty()) return per_domain;
    const size_t block = per_domain.size() / M;
    std::vector<int64_t> out(per_domain);
    out.resize(per_domain.size() + block, 0);
    for (int m = 0; m < M; ++m)
      for (size_t i = 0; i < block; ++i) out[M * block + i] += per_domain[m * block + i];
    return out;
  };
  rep.coactivation = with_all(acc.coactivation());
  rep.coactivation_adjacent = with_all(acc.coactivation_adjacent());
  rep.transitions = with_all(acc.transitions());
  const int L = shape.layers;
  rep.entropy_histogram = QuantileBins(with_all(acc.entropy_histogram()), M + 1, L,
                                       kEntropyDeficitGrid, rep.options.entropy_bins, M);
  rep.margin_histogram = QuantileBins(with_all(acc.margin_histogram()), M + 1, L, kMarginGrid,
                                      rep.options.margin_bins, M);
  return rep;
}

}  // namespace moe
