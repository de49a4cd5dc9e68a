#include "analysis/stats/routing_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/common/hdf5_util.h"
#include "analysis/trace/trace_reader.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
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

std::string Number(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

// Throws unless A and B cover the same tokens of one model shape and the margin edges are
// usable.
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
  if (o.margin_edges.empty()) Fail("--margin-edges", "needs at least one edge");
}

// What the rows are made of, per cell (domain row m, layer l) = m * L + l: token sums [M+1],
// per-cell sums [M+1, L], loads [M+1, L, E], margin bins [M+1, L, bins].
struct CompareSums {
  std::vector<double> tokens, flips, overlap, jaccard, first_valid, load_a, load_b;
  std::vector<double> margin_tokens, margin_flips;
};

// The report's rows from the sums, per domain row and layer.
void AddRows(const CompareSums& s, const CompareOptions& o, CompareReport& rep) {
  using enum CompareMetric;
  const int L = rep.layers, E = rep.experts, M = static_cast<int>(rep.domains.size());
  const int bins = static_cast<int>(o.margin_edges.size());
  auto add = [&](int l, int e, int m, CompareMetric metric, double value, double n) {
    rep.rows.push_back({l, e, m, metric, value, n, kNan, kNan});
  };
  for (int m = 0; m <= M; ++m)
    for (int l = 0; l < L; ++l) {
      const size_t cell = static_cast<size_t>(m) * L + l;
      const double n = s.tokens[m];
      const double* load_a = s.load_a.data() + cell * E;
      const double* load_b = s.load_b.data() + cell * E;
      add(l, -1, m, kTokens, n, n);
      add(l, -1, m, kFlipRateTop1,
          s.first_valid[cell] > 0 ? s.flips[cell] / s.first_valid[cell] : kNan,
          s.first_valid[cell]);
      add(l, -1, m, kTopkOverlap, n > 0 ? s.overlap[cell] / n : kNan, n);
      add(l, -1, m, kTopkJaccard, n > 0 ? s.jaccard[cell] / n : kNan, n);
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
      for (int bin = 0; bin < bins; ++bin) {
        const size_t at = cell * bins + bin;
        const double lo = o.margin_edges[static_cast<size_t>(bin)];
        const double hi = bin + 1 < bins ? o.margin_edges[static_cast<size_t>(bin + 1)]
                                         : std::numeric_limits<double>::infinity();
        const double t = s.margin_tokens[at];
        rep.rows.push_back(
            {l, -1, m, kFlipRateByMargin, t > 0 ? s.margin_flips[at] / t : kNan, t, lo, hi});
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
  rep.has_margin = ia.record_logits && a.num_logit_rows() > 0;
  if (!rep.has_margin)
    rep.note = "the margin split needs router logits in A (" + rep.a +
               " was traced without --record-logits)";
  const int L = rep.layers, E = rep.experts, M = static_cast<int>(rep.domains.size());
  const int bins = static_cast<int>(o.margin_edges.size());
  const size_t ml = static_cast<size_t>(M + 1) * L;
  CompareSums s;
  s.tokens.assign(static_cast<size_t>(M + 1), 0);
  for (auto* v : {&s.flips, &s.overlap, &s.jaccard, &s.first_valid}) v->assign(ml, 0);
  for (auto* v : {&s.load_a, &s.load_b}) v->assign(ml * E, 0);
  for (auto* v : {&s.margin_tokens, &s.margin_flips}) v->assign(ml * bins, 0);
  if (o.token_flips) rep.token_flips.assign(static_cast<size_t>(rep.tokens) * L, 0);
  const std::span<const int64_t> logit_tokens = a.logit_tokens();
  std::vector<int16_t> sa(static_cast<size_t>(std::max(ia.top_k, 1))),
      sb(static_cast<size_t>(std::max(ib.top_k, 1)));
  std::vector<float> sorted(static_cast<size_t>(E));

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
      const auto r0 =
          std::lower_bound(logit_tokens.begin(), logit_tokens.end(), begin) - logit_tokens.begin();
      const auto r1 = std::lower_bound(logit_tokens.begin(), logit_tokens.end(), begin + count) -
                      logit_tokens.begin();
      logits = a.ReadRouterLogits(r0, r1 - r0);
    }
    for (int64_t t = 0; t < count; ++t) {
      const int m = a.doc_domains()[static_cast<size_t>(ta.doc[t])];
      s.tokens[m] += 1;
      s.tokens[M] += 1;
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
        for (int row : {m, M}) {
          const size_t cell = static_cast<size_t>(row) * L + l;
          s.flips[cell] += flip;
          s.first_valid[cell] += has_first;
          s.overlap[cell] += static_cast<double>(both) / ia.top_k;
          s.jaccard[cell] += either > 0 ? static_cast<double>(both) / either : 1.0;
          for (int i = 0; i < na; ++i) s.load_a[cell * E + sa[i]] += 1;
          for (int j = 0; j < nb; ++j) s.load_b[cell * E + sb[j]] += 1;
        }
        if (z != nullptr && has_first && na < E) {
          const float* zl = z + static_cast<size_t>(l) * E;
          std::copy(zl, zl + E, sorted.begin());
          std::sort(sorted.begin(), sorted.end(), std::greater<float>());
          const double margin = static_cast<double>(sorted[na - 1]) - sorted[na];
          int bin = static_cast<int>(
                        std::upper_bound(o.margin_edges.begin(), o.margin_edges.end(), margin) -
                        o.margin_edges.begin()) -
                    1;
          bin = std::clamp(bin, 0, bins - 1);
          for (int row : {m, M}) {
            const size_t cell = (static_cast<size_t>(row) * L + l) * bins + bin;
            s.margin_tokens[cell] += 1;
            s.margin_flips[cell] += flip;
          }
        }
      }
    }
  }
  AddRows(s, o, rep);
  return rep;
}

void ExportCompare(const std::filesystem::path& dir, const CompareReport& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) Fail(dir.string(), "cannot be created (" + ec.message() + ")");
  const int M = static_cast<int>(r.domains.size());
  auto domain = [&](int m) {
    return m < M ? r.domains[static_cast<size_t>(m)] : std::string("all");
  };
  {
    const auto file = dir / "compare.csv";
    CheckReplaceable(file);
    std::ostringstream out;
    out << "layer,expert,domain,metric,value,n,bin_low,bin_high\n";
    for (const CompareRow& row : r.rows)
      out << row.layer << ',' << row.expert << ',' << domain(row.domain) << ','
          << CompareMetricName(row.metric) << ',' << Number(row.value) << ',' << Number(row.n)
          << ',' << Number(row.bin_low) << ','
          << (std::isinf(row.bin_high) ? "inf" : Number(row.bin_high)) << '\n';
    WriteFileAtomically(file, out.str());
  }
  {
    nlohmann::json rows = nlohmann::json::array();
    auto num = [](double v) {
      return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    for (const CompareRow& row : r.rows) {
      nlohmann::json j = {{"layer", row.layer},           {"expert", row.expert},
                          {"domain", domain(row.domain)}, {"metric", CompareMetricName(row.metric)},
                          {"value", num(row.value)},      {"n", row.n}};
      if (!std::isnan(row.bin_low)) {
        j["bin_low"] = row.bin_low;
        j["bin_high"] = num(row.bin_high);
      }
      rows.push_back(j);
    }
    const nlohmann::json j = {{"format", "moescope-compare"},
                              {"format_version", 1},
                              {"a", r.a},
                              {"b", r.b},
                              {"num_layers", r.layers},
                              {"num_experts", r.experts},
                              {"top_k_a", r.top_k_a},
                              {"top_k_b", r.top_k_b},
                              {"tokens", r.tokens},
                              {"note", r.note},
                              {"rows", rows}};
    WriteFileAtomically(dir / "compare.json", j.dump(1) + "\n");
  }
  if (!r.token_flips.empty()) {
    h5::SilenceErrors();
    const std::string p = (dir / "compare.h5").string();
    PendingFile pending(p);
    {
      h5::Handle f(
          h5::Check(H5Fcreate(pending.temp().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), p,
                    "cannot be created"));
      h5::Handle ds = h5::CreateFixed(
          f.id(), "/flips", H5T_STD_I8LE,
          {static_cast<hsize_t>(r.tokens), static_cast<hsize_t>(r.layers)}, {p, "/flips"});
      h5::WriteAll(ds.id(), H5T_NATIVE_UINT8, r.token_flips.data(), {p, "/flips"});
      ds = h5::Handle();
      h5::Check(H5Fclose(f.release()), p, "cannot be written");
    }
    pending.Commit();
  }
}

std::string FormatCompareTable(const CompareReport& r) {
  const int M = static_cast<int>(r.domains.size());
  std::string out = "layer  flip(top1)  overlap(top-k)  jaccard  load cos  load TV\n";
  for (int l = 0; l < r.layers; ++l) {
    auto v = [&](CompareMetric metric) {
      const CompareRow* row = r.Find(metric, l, -1, M);
      return row ? row->value : kNan;
    };
    char line[160];
    std::snprintf(line, sizeof(line), "%5d  %10.4f  %14.4f  %7.4f  %8.4f  %7.4f\n", l,
                  v(CompareMetric::kFlipRateTop1), v(CompareMetric::kTopkOverlap),
                  v(CompareMetric::kTopkJaccard), v(CompareMetric::kLoadCosine),
                  v(CompareMetric::kLoadTv));
    out += line;
  }
  if (!r.note.empty()) out += "note: " + r.note + "\n";
  return out;
}

}  // namespace moe
