#include "analysis/stats/routing_compare.h"

#include "analysis/stats/resampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <map>

#include "analysis/trace/trace_reader.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kBlock = 1 << 15;

// Selected experts of one routing row (weight > 0, as load counts them).
int Selected(const RoutingRows& r, int64_t t, int l, int16_t* out) {
  const auto ids = r.Ids(t, l);
  const auto w = r.Weights(t, l);
  int n = 0;
  for (size_t j = 0; j < ids.size(); ++j)
    if (ids[j] >= 0 && w[j] > 0) out[n++] = ids[j];
  return n;
}

// The top-k boundary margin z_(na) − z_(na+1) of one layer's E logits (descending order, na =
// A's selections, 0 < na < E); NaN when a logit is not finite.
double Margin(const float* z, int E, int na, std::vector<float>& sorted) {
  for (int e = 0; e < E; ++e)
    if (!std::isfinite(z[e])) return kNan;
  std::copy(z, z + E, sorted.begin());
  std::partial_sort(sorted.begin(), sorted.begin() + na + 1, sorted.end(), std::greater<float>());
  return static_cast<double>(sorted[static_cast<size_t>(na - 1)]) -
         static_cast<double>(sorted[static_cast<size_t>(na)]);
}

// The logit rows of token rows [begin, begin + count) as [r0, r1).
std::pair<int64_t, int64_t> LogitRange(std::span<const int64_t> tokens, int64_t begin,
                                       int64_t count) {
  const auto r0 = std::lower_bound(tokens.begin(), tokens.end(), begin) - tokens.begin();
  const auto r1 = std::lower_bound(tokens.begin(), tokens.end(), begin + count) - tokens.begin();
  return {r0, r1};
}

// A rate's interval over documents, clipped to [0, 1] (every ratio compare reports is a rate).
std::pair<double, double> RateInterval(const ClusterRatio& ratio, double level) {
  const auto [low, high] = ratio.Interval(level);
  if (std::isnan(low)) return {low, high};
  return {std::max(0.0, low), std::min(1.0, high)};
}

}  // namespace

std::vector<double> QuantileMarginEdges(std::vector<double>& margins, int bins) {
  std::sort(margins.begin(), margins.end());
  std::vector<double> edges = {0.0};
  const auto n = static_cast<int64_t>(margins.size());
  for (int64_t j = 1; j < bins; ++j) {
    const int64_t at = (j * n + bins - 1) / bins;  // ⌈j·n/bins⌉
    if (at >= n) break;
    const double v = margins[static_cast<size_t>(at)];
    if (v > edges.back()) edges.push_back(v);
  }
  return edges;
}

namespace {
// Throws unless A and B cover the same tokens of one model shape and the options are usable.
void CheckComparable(const TraceReader& a, const TraceReader& b, const CompareOptions& o) {
  const auto &ia = a.info(), &ib = b.info();
  const std::string& bp = ib.path;
  if (ia.num_layers != ib.num_layers)
    Fail(bp, "has num_layers " + std::to_string(ib.num_layers) + ", " + ia.path + " has " +
                 std::to_string(ia.num_layers));
  if (ia.num_experts != ib.num_experts)
    Fail(bp, "has num_experts " + std::to_string(ib.num_experts) + ", " + ia.path + " has " +
                 std::to_string(ia.num_experts));
  if (a.num_tokens() != b.num_tokens() ||
      !std::equal(a.doc_offsets().begin(), a.doc_offsets().end(), b.doc_offsets().begin(),
                  b.doc_offsets().end()))
    Fail(bp + ":/docs/offset",
         "differs from " + ia.path + "'s; compare needs two traces over the same tokens");
  for (size_t i = 1; i < o.margin_edges.size(); ++i)
    if (!(o.margin_edges[i] > o.margin_edges[i - 1])) Fail("--margin-edges", "must be increasing");
  for (double e : o.margin_edges)
    if (!std::isfinite(e)) Fail("--margin-edges", "must be finite numbers");
  if (o.margin_edges.empty() && o.margin_bins < 1) Fail("--margin-bins", "must be at least 1");
  if (!(o.ci_level > 0 && o.ci_level < 1)) Fail("--ci-level", "must lie between 0 and 1");
}

// A's margins per layer at every `stride`-th logit row (rows where A selects 0 < k < E experts
// and every logit is finite), for the quantile edges. Reads A's routing and logits in blocks.
std::vector<std::vector<double>> CollectMargins(const TraceReader& a, int64_t stride) {
  const int L = a.info().num_layers, E = a.info().num_experts;
  const std::span<const int64_t> logit_tokens = a.logit_tokens();
  std::vector<std::vector<double>> margins(static_cast<size_t>(L));
  for (auto& m : margins)
    m.reserve(static_cast<size_t>(std::min(a.num_logit_rows(), kMaxQuantileRows) + 1));
  std::vector<int16_t> sa(static_cast<size_t>(std::max(a.info().top_k, 1)));
  std::vector<float> sorted(static_cast<size_t>(E));
  for (int64_t begin = 0; begin < a.num_tokens(); begin += kBlock) {
    const int64_t count = std::min(kBlock, a.num_tokens() - begin);
    const auto [r0, r1] = LogitRange(logit_tokens, begin, count);
    if (r0 == r1) continue;
    const RoutingRows ra = a.ReadRouting(begin, count);
    const LogitRows logits = a.ReadRouterLogits(r0, r1 - r0);
    for (int64_t i = 0; i < logits.count; ++i) {
      if ((r0 + i) % stride != 0) continue;
      const int64_t t = logits.token[static_cast<size_t>(i)] - begin;
      for (int l = 0; l < L; ++l) {
        const int na = Selected(ra, t, l, sa.data());
        if (na == 0 || na >= E) continue;
        const double m = Margin(logits.Logits(i, l).data(), E, na, sorted);
        if (!std::isnan(m)) margins[static_cast<size_t>(l)].push_back(m);
      }
    }
  }
  return margins;
}

// What the rows are made of, per cell (domain row m, layer l) = m * L + l: token sums [M+1],
// ratio sums over documents [M+1, L], loads [M+1, L, E], margin bins [M+1, L, max bins].
struct CompareSums {
  std::vector<double> tokens, load_a, load_b;
  std::vector<ClusterRatio> flips, overlap, jaccard, margin;
};

// One document's sums, per layer [L] and margin bin [L, max bins], until it is added.
struct DocumentSums {
  int domain = -1;
  double tokens = 0;
  std::vector<double> flips, first_valid, overlap, jaccard, margin_flips, margin_tokens;

  DocumentSums(int layers, int bins) {
    for (auto* v : {&flips, &first_valid, &overlap, &jaccard}) v->assign(layers, 0);
    for (auto* v : {&margin_flips, &margin_tokens})
      v->assign(static_cast<size_t>(layers) * bins, 0);
  }
  // Adds this document to its domain's row and to row M, then clears it.
  void AddTo(CompareSums& s, int L, int M, int bins) {
    if (domain < 0) return;
    for (int row : {domain, M}) {
      s.tokens[row] += tokens;
      for (int l = 0; l < L; ++l) {
        const size_t cell = static_cast<size_t>(row) * L + l;
        s.flips[cell].Add(flips[l], first_valid[l]);
        s.overlap[cell].Add(overlap[l], tokens);
        s.jaccard[cell].Add(jaccard[l], tokens);
        for (int b = 0; b < bins; ++b) {
          const size_t at = static_cast<size_t>(l) * bins + b;
          s.margin[cell * bins + b].Add(margin_flips[at], margin_tokens[at]);
        }
      }
    }
    tokens = 0;
    for (auto* v : {&flips, &first_valid, &overlap, &jaccard, &margin_flips, &margin_tokens})
      std::fill(v->begin(), v->end(), 0.0);
  }
};

CompareRow Row(int l, int e, int m, CompareMetric metric, double value, double n) {
  CompareRow r;
  r.layer = l;
  r.expert = e;
  r.domain = m;
  r.metric = metric;
  r.value = value;
  r.n = n;
  r.bin_low = r.bin_high = r.ci_low = r.ci_high = kNan;
  return r;
}

CompareRow RatioRow(int l, int m, CompareMetric metric, const ClusterRatio& ri, double level) {
  CompareRow r = Row(l, -1, m, metric, ri.Ratio(), ri.n);
  std::tie(r.ci_low, r.ci_high) = RateInterval(ri, level);
  r.documents = ri.groups;
  return r;
}

// The report's rows from the sums, per domain row and layer.
void AddRows(const CompareSums& s, int bins, CompareReport& rep) {
  using enum CompareMetric;
  const int L = rep.layers, E = rep.experts, M = static_cast<int>(rep.domains.size());
  const double level = rep.ci_level;
  auto add = [&](int l, int e, int m, CompareMetric metric, double value, double n) {
    rep.rows.push_back(Row(l, e, m, metric, value, n));
  };
  for (int m = 0; m <= M; ++m)
    for (int l = 0; l < L; ++l) {
      const size_t cell = static_cast<size_t>(m) * L + l;
      const double n = s.tokens[m];
      const double* load_a = s.load_a.data() + cell * E;
      const double* load_b = s.load_b.data() + cell * E;
      add(l, -1, m, kTokens, n, n);
      rep.rows.push_back(RatioRow(l, m, kFlipRateTop1, s.flips[cell], level));
      rep.rows.push_back(RatioRow(l, m, kTopkOverlap, s.overlap[cell], level));
      rep.rows.push_back(RatioRow(l, m, kTopkJaccard, s.jaccard[cell], level));
      double dot = 0, na = 0, nb = 0, sum_a = 0, sum_b = 0;
      for (int e = 0; e < E; ++e) {
        dot += load_a[e] * load_b[e];
        na += load_a[e] * load_a[e];
        nb += load_b[e] * load_b[e];
        sum_a += load_a[e];
        sum_b += load_b[e];
      }
      add(l, -1, m, kLoadCosine, na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : kNan, n);
      double tv = 0;
      for (int e = 0; e < E; ++e) tv += std::abs(load_a[e] / sum_a - load_b[e] / sum_b);
      add(l, -1, m, kLoadTv, sum_a > 0 && sum_b > 0 ? tv / 2 : kNan, n);
      for (int e = 0; e < E; ++e) {
        const double share_a = n > 0 ? load_a[e] / (n * rep.top_k_a) : kNan;
        const double share_b = n > 0 ? load_b[e] / (n * rep.top_k_b) : kNan;
        add(l, e, m, kShareA, share_a, n);
        add(l, e, m, kShareB, share_b, n);
        add(l, e, m, kShareDelta, share_b - share_a, n);
      }
      if (!rep.has_margin) continue;
      const std::vector<double>& edges = rep.margin_edges[static_cast<size_t>(l)];
      const int layer_bins = static_cast<int>(edges.size());
      for (int bin = 0; bin < layer_bins; ++bin) {
        CompareRow r = RatioRow(l, m, kFlipRateByMargin, s.margin[cell * bins + bin], level);
        r.bin_low = edges[static_cast<size_t>(bin)];
        r.bin_high = bin + 1 < layer_bins ? edges[static_cast<size_t>(bin + 1)] : kInf;
        rep.rows.push_back(r);
      }
    }
}

}  // namespace

const char* CompareMetricName(CompareMetric metric) {
  static constexpr const char* kNames[] = {
      "tokens",  "flip_rate_top1", "topk_overlap", "topk_jaccard", "load_cosine",
      "load_tv", "share_a",        "share_b",      "share_delta",  "flip_rate_by_margin"};
  static_assert(std::size(kNames) == static_cast<size_t>(CompareMetric::kFlipRateByMargin) + 1);
  return kNames[static_cast<size_t>(metric)];
}

const CompareRow* CompareReport::Find(CompareMetric metric, int layer, int expert,
                                      int domain) const {
  for (const CompareRow& r : rows)
    if (r.metric == metric && r.layer == layer && r.expert == expert && r.domain == domain &&
        std::isnan(r.bin_low))
      return &r;
  return nullptr;
}

std::vector<const CompareRow*> CompareReport::MarginRows(int layer, int domain) const {
  std::vector<const CompareRow*> out;
  for (const CompareRow& r : rows)
    if (r.metric == CompareMetric::kFlipRateByMargin && r.layer == layer && r.domain == domain)
      out.push_back(&r);
  return out;
}

CompareReport CompareTraces(const std::filesystem::path& a_path,
                            const std::filesystem::path& b_path, const CompareOptions& o) {
  const TraceReader a(a_path), b(b_path);
  const TraceAttributes &ia = a.info(), &ib = b.info();
  const std::string bp = b_path.string();
  CheckComparable(a, b, o);

  CompareReport rep;
  rep.a = a_path.string();
  rep.b = bp;
  rep.layers = ia.num_layers;
  rep.experts = ia.num_experts;
  rep.top_k_a = ia.top_k;
  rep.top_k_b = ib.top_k;
  rep.domains = a.domains();
  rep.tokens = a.num_tokens();
  rep.documents = a.num_documents();
  rep.ci_level = o.ci_level;
  rep.has_margin = ia.record_logits && a.num_logit_rows() > 0;
  const int L = rep.layers, E = rep.experts, M = static_cast<int>(rep.domains.size());
  if (!rep.has_margin) {
    rep.note = "the margin split needs router logits in A (" + rep.a +
               " was traced without --record-logits)";
  } else if (o.margin_edges.empty()) {
    rep.margin_binning = "quantile";
    rep.margin_bins_requested = o.margin_bins;
    rep.margin_row_stride = (a.num_logit_rows() + kMaxQuantileRows - 1) / kMaxQuantileRows;
    std::vector<std::vector<double>> margins = CollectMargins(a, rep.margin_row_stride);
    for (auto& m : margins) {
      rep.margin_samples.push_back(static_cast<int64_t>(m.size()));
      rep.margin_edges.push_back(QuantileMarginEdges(m, o.margin_bins));
      std::vector<double>().swap(m);
    }
  } else {
    rep.margin_binning = "fixed";
    rep.margin_bins_requested = static_cast<int>(o.margin_edges.size());
    rep.margin_edges.assign(static_cast<size_t>(L), o.margin_edges);
  }
  int bins = 1;
  for (const auto& e : rep.margin_edges) bins = std::max(bins, static_cast<int>(e.size()));
  const size_t ml = static_cast<size_t>(M + 1) * L;
  CompareSums s;
  s.tokens.assign(static_cast<size_t>(M + 1), 0);
  for (auto* v : {&s.flips, &s.overlap, &s.jaccard}) v->assign(ml, {});
  for (auto* v : {&s.load_a, &s.load_b}) v->assign(ml * E, 0);
  if (rep.has_margin) s.margin.assign(ml * bins, {});
  DocumentSums doc(L, rep.has_margin ? bins : 0);
  if (o.token_flips) rep.token_flips.assign(static_cast<size_t>(rep.tokens) * L, 0);
  const std::span<const int64_t> logit_tokens = a.logit_tokens();
  std::vector<int16_t> sa(static_cast<size_t>(std::max(ia.top_k, 1))),
      sb(static_cast<size_t>(std::max(ib.top_k, 1)));
  std::vector<float> sorted(static_cast<size_t>(E));
  int64_t current_doc = -1;

  for (int64_t begin = 0; begin < rep.tokens; begin += kBlock) {
    const int64_t count = std::min(kBlock, rep.tokens - begin);
    const TokenRows ta = a.ReadTokens(begin, count), tb = b.ReadTokens(begin, count);
    if (ta.id != tb.id) {
      const int64_t at =
          std::mismatch(ta.id.begin(), ta.id.end(), tb.id.begin()).first - ta.id.begin();
      Fail(bp + ":/tokens/id", "row " + std::to_string(begin + at) + " differs from " +
                                   a_path.string() + "'s; the traces are not over the same tokens");
    }
    const RoutingRows ra = a.ReadRouting(begin, count), rb = b.ReadRouting(begin, count);
    LogitRows logits;
    int64_t next_logit = 0;
    if (rep.has_margin) {
      const auto [r0, r1] = LogitRange(logit_tokens, begin, count);
      logits = a.ReadRouterLogits(r0, r1 - r0);
    }
    for (int64_t t = 0; t < count; ++t) {
      if (ta.doc[t] != current_doc) {  // documents are contiguous rows (/docs/offset)
        doc.AddTo(s, L, M, rep.has_margin ? bins : 0);
        current_doc = ta.doc[t];
        doc.domain = a.doc_domains()[static_cast<size_t>(current_doc)];
      }
      doc.tokens += 1;
      const int m = doc.domain;
      const float* z = nullptr;
      if (next_logit < logits.count && logits.token[next_logit] == begin + t)
        z = logits.logits.data() + static_cast<size_t>(next_logit++) * L * E;
      for (int l = 0; l < L; ++l) {
        const int na = Selected(ra, t, l, sa.data()), nb = Selected(rb, t, l, sb.data());
        int both = 0;
        for (int i = 0; i < na; ++i)
          for (int j = 0; j < nb; ++j) both += sa[i] == sb[j];
        const int either = na + nb - both;
        const bool has_first = na > 0 && nb > 0;
        const bool flip = has_first && sa[0] != sb[0];
        if (o.token_flips) rep.token_flips[static_cast<size_t>(begin + t) * L + l] = flip;
        doc.flips[l] += flip;
        doc.first_valid[l] += has_first;
        doc.overlap[l] += static_cast<double>(both) / ia.top_k;
        doc.jaccard[l] += either > 0 ? static_cast<double>(both) / either : 1.0;
        for (int row : {m, M}) {
          const size_t cell = static_cast<size_t>(row) * L + l;
          for (int i = 0; i < na; ++i) s.load_a[cell * E + sa[i]] += 1;
          for (int j = 0; j < nb; ++j) s.load_b[cell * E + sb[j]] += 1;
        }
        if (z != nullptr && has_first && na < E) {
          const double margin = Margin(z + static_cast<size_t>(l) * E, E, na, sorted);
          if (std::isnan(margin)) continue;
          const std::vector<double>& edges = rep.margin_edges[static_cast<size_t>(l)];
          const int bin =
              std::max(0, static_cast<int>(std::upper_bound(edges.begin(), edges.end(), margin) -
                                           edges.begin()) -
                              1);
          const size_t at = static_cast<size_t>(l) * bins + bin;
          doc.margin_tokens[at] += 1;
          doc.margin_flips[at] += flip;
        }
      }
    }
  }
  doc.AddTo(s, L, M, rep.has_margin ? bins : 0);
  AddRows(s, bins, rep);
  return rep;
}

}  // namespace moe
