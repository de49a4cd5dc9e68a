#include "analysis/stats/stats_export.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/common/hdf5_util.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

using nlohmann::json;
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

std::string DomainName(const StatsReport& r, int m) {
  return m < static_cast<int>(r.domains.size()) ? r.domains[static_cast<size_t>(m)] : "all";
}

// Shortest text that reads back to the same double; "" for NaN (an empty CSV cell).
std::string Number(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

json JsonNumber(double v) {
  return std::isnan(v) ? json(nullptr) : json(v);
}

std::string CsvText(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

json OptionsJson(const StatsOptions& o) {
  return {{"bootstrap", o.bootstrap},
          {"permutations", o.permutations},
          {"fdr", o.fdr},
          {"seed", o.seed},
          {"ci_level", o.ci_level},
          {"min_documents", o.min_documents},
          {"rank_adjacent", o.rank_adjacent},
          {"vocabulary", o.vocabulary},
          {"vocab_min_count", o.vocab_min_count},
          {"vocab_predicted", o.vocab_predicted},
          {"top_tokens", o.top_tokens},
          {"entropy_bins", o.entropy_bins},
          {"margin_bins", o.margin_bins}};
}

// Each family of tests: how many, how many permutations, and the discoveries at the FDR level.
json FamiliesJson(const StatsReport& r) {
  json families = json::array();
  for (const TestFamily& f : r.families)
    families.push_back({{"metric", MetricName(f.metric)},
                        {"tests", f.tests},
                        {"permutations", f.permutations},
                        {"min_p", f.min_p},
                        {"fdr", f.fdr},
                        {"discoveries", f.discoveries},
                        {"correction", "benjamini-hochberg"}});
  return families;
}

// Text exports are built in memory and written atomically: a full disk leaves the previous
// file (or none), never a table cut short.
std::ostringstream OpenText(const std::filesystem::path& file) {
  CheckReplaceable(file);
  return std::ostringstream();
}

void Close(std::ostringstream& out, const std::filesystem::path& file) {
  WriteFileAtomically(file, out.str());
}

// ---- stats.h5 -------------------------------------------------------------------------------

// The open stats.h5 that the helpers below write datasets into.
struct Hdf5Out {
  hid_t file;
  std::string path;  // for messages

  // A dataset of fixed `dims` holding `data` (int64, int32 or double as `type` says); nothing
  // (an invalid handle) when a dimension is 0.
  h5::Handle Fixed(const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
                   const void* data) const {
    for (hsize_t d : dims)
      if (d == 0) return h5::Handle();
    h5::Handle ds = h5::CreateFixed(file, name, type, dims, {path, name});
    h5::WriteAll(ds.id(),
                 type == H5T_STD_I64LE   ? H5T_NATIVE_INT64
                 : type == H5T_STD_I32LE ? H5T_NATIVE_INT32
                                         : H5T_NATIVE_DOUBLE,
                 data, {path, name});
    return ds;
  }
};

void WriteRootAttributes(const Hdf5Out& out, const StatsReport& r, const StatsExportMeta& meta) {
  const hid_t f = out.file;
  const h5::Place root{out.path, "/"};
  h5::WriteAttribute(f, "format", std::string(kStatsFormatName), root);
  h5::WriteAttribute(f, "format_version", int64_t{kStatsFormatVersion}, root);
  h5::WriteAttribute(f, "engine_version", std::string(MOESCOPE_VERSION), root);
  h5::WriteAttribute(f, "inputs", json(meta.inputs).dump(), root);
  h5::WriteAttribute(f, "incomplete_inputs", json(meta.incomplete).dump(), root);
  h5::WriteAttribute(f, "notes", json(meta.notes).dump(), root);
  h5::WriteAttribute(f, "options", OptionsJson(r.options).dump(), root);
  h5::WriteAttribute(f, "test_families", FamiliesJson(r).dump(), root);
  h5::WriteAttribute(f, "num_layers", int64_t{r.shape.layers}, root);
  h5::WriteAttribute(f, "num_experts", int64_t{r.shape.experts}, root);
  h5::WriteAttribute(f, "top_k", int64_t{r.shape.top_k}, root);
  h5::WriteAttribute(f, "documents", r.documents, root);
  h5::WriteAttribute(f, "tokens", r.tokens, root);
}

// /domains: the M domain names and "all", as fixed-width strings.
void WriteDomainNames(const Hdf5Out& out, const StatsReport& r) {
  const int M = r.shape.domains;
  size_t width = 1;
  for (int m = 0; m <= M; ++m) width = std::max(width, DomainName(r, m).size());
  std::vector<char> names(static_cast<size_t>(M + 1) * width, '\0');
  for (int m = 0; m <= M; ++m) {
    const std::string n = DomainName(r, m);
    std::copy(n.begin(), n.end(), names.begin() + static_cast<size_t>(m) * width);
  }
  h5::Handle type = h5::FixedStringType(width);
  h5::Handle ds = h5::CreateFixed(out.file, "/domains", type.id(), {static_cast<hsize_t>(M) + 1},
                                  {out.path, "/domains"});
  h5::WriteAll(ds.id(), type.id(), names.data(), {out.path, "/domains"});
}

// One metric's rows laid out as [M+1, L, E] (expert level) or [M+1, L] grids, NaN where the
// report has no row; all empty for a metric the report does not have.
struct MetricGrids {
  std::vector<double> value, low, high, base, count, q, docs, mc_error;
};

std::vector<MetricGrids> GridMetrics(const StatsReport& r) {
  const auto& defs = RoutingMetricDefs();
  const size_t rows = static_cast<size_t>(r.shape.domains) + 1;
  const int L = r.shape.layers, E = r.shape.experts;
  std::vector<MetricGrids> grids(defs.size());
  for (const StatsRow& row : r.rows) {
    const size_t i = MetricSlot(row.metric);
    const bool expert = defs[i].level == MetricLevel::kExpert;
    MetricGrids& g = grids[i];
    const size_t size = rows * L * (expert ? E : 1);
    if (g.value.empty())
      for (auto* v : {&g.value, &g.low, &g.high, &g.base, &g.count, &g.q, &g.docs, &g.mc_error})
        v->assign(size, kNan);
    const size_t at = (static_cast<size_t>(row.domain) * L + row.layer) * (expert ? E : 1) +
                      (expert ? row.expert : 0);
    g.value[at] = row.value;
    g.low[at] = row.ci_low;
    g.high[at] = row.ci_high;
    g.base[at] = row.baseline;
    g.count[at] = row.n;
    g.q[at] = row.q;
    g.docs[at] = static_cast<double>(row.docs);
    g.mc_error[at] = row.ci_mc_error;
  }
  return grids;
}

// /metrics/<name>/{value, ci_low, ci_high, baseline, n}: [M+1, L, E] or [M+1, L].
void WriteMetrics(const Hdf5Out& out, const StatsReport& r) {
  const auto& defs = RoutingMetricDefs();
  const std::vector<MetricGrids> grids = GridMetrics(r);
  for (size_t i = 0; i < defs.size(); ++i) {
    const MetricGrids& m = grids[i];
    if (m.value.empty()) continue;
    std::vector<hsize_t> dims = {static_cast<hsize_t>(r.shape.domains) + 1,
                                 static_cast<hsize_t>(r.shape.layers)};
    if (defs[i].level == MetricLevel::kExpert)
      dims.push_back(static_cast<hsize_t>(r.shape.experts));
    const std::string g = std::string("/metrics/") + defs[i].name + "/";
    const h5::Place where{out.path, g + "value"};
    h5::Handle v = out.Fixed(g + "value", H5T_IEEE_F64LE, dims, m.value.data());
    h5::WriteAttribute(v.id(), "description", std::string(defs[i].description), where);
    h5::WriteAttribute(v.id(), "section", std::string(defs[i].section), where);
    h5::WriteAttribute(v.id(), "baseline_kind", std::string(defs[i].baseline), where);
    out.Fixed(g + "ci_low", H5T_IEEE_F64LE, dims, m.low.data());
    out.Fixed(g + "ci_high", H5T_IEEE_F64LE, dims, m.high.data());
    out.Fixed(g + "baseline", H5T_IEEE_F64LE, dims, m.base.data());
    out.Fixed(g + "n", H5T_IEEE_F64LE, dims, m.count.data());
    out.Fixed(g + "docs", H5T_IEEE_F64LE, dims, m.docs.data());
    out.Fixed(g + "ci_mc_error", H5T_IEEE_F64LE, dims, m.mc_error.data());
    if (std::any_of(m.q.begin(), m.q.end(), [](double q) { return !std::isnan(q); }))
      out.Fixed(g + "q", H5T_IEEE_F64LE, dims, m.q.data());
  }
}

// /coactivation/{count, adjacent_count} [M+1, L, E, E] and /transitions/count [M+1, L-1, E, E].
void WriteCountTables(const Hdf5Out& out, const StatsReport& r) {
  const hsize_t rows = static_cast<hsize_t>(r.shape.domains) + 1;
  const hsize_t l = static_cast<hsize_t>(r.shape.layers), e = static_cast<hsize_t>(r.shape.experts);
  out.Fixed("/coactivation/count", H5T_STD_I64LE, {rows, l, e, e}, r.coactivation.data());
  if (!r.coactivation_adjacent.empty())
    out.Fixed("/coactivation/adjacent_count", H5T_STD_I64LE, {rows, l, e, e},
              r.coactivation_adjacent.data());
  out.Fixed("/transitions/count", H5T_STD_I64LE, {rows, l - 1, e, e}, r.transitions.data());
}

// /histograms/{router_entropy_deficit, margin_logit}/{count [M+1, L, bins], edges [L, bins+1]}:
// quantile bins per layer (histogram.h); a layer with fewer bins has NaN edges and 0 counts
// after its last.
void WriteHistograms(const Hdf5Out& out, const StatsReport& r) {
  const hsize_t rows = static_cast<hsize_t>(r.shape.domains) + 1;
  const hsize_t l = static_cast<hsize_t>(r.shape.layers);
  for (auto [h, name] : {std::pair{&r.entropy_histogram, "router_entropy_deficit"},
                         {&r.margin_histogram, "margin_logit"}}) {
    const std::string g = std::string("/histograms/") + name + "/";
    const hsize_t bins = static_cast<hsize_t>(h->bins);
    out.Fixed(g + "count", H5T_STD_I64LE, {rows, l, bins}, h->counts.data());
    out.Fixed(g + "edges", H5T_IEEE_F64LE, {l, bins + 1}, h->edges.data());
    std::vector<int32_t> layer_bins(h->layer_bins.begin(), h->layer_bins.end());
    out.Fixed(g + "layer_bins", H5T_STD_I32LE, {l}, layer_bins.data());
  }
}

// /vocab/{input, next, predicted}/top_{token, count, occurrences, share} [L, E, top_n];
// "predicted" only when the traces record predictions.
void WriteVocab(const Hdf5Out& out, const StatsReport& r) {
  const hsize_t l = static_cast<hsize_t>(r.shape.layers), e = static_cast<hsize_t>(r.shape.experts);
  for (auto [v, name] : {std::pair{&r.vocab_input, "input"},
                         {&r.vocab_next, "next"},
                         {&r.vocab_predicted, "predicted"}}) {
    if (v->layers == 0) continue;
    const hsize_t n = static_cast<hsize_t>(v->top_n);
    std::vector<int32_t> token;
    std::vector<int64_t> c, occ;
    std::vector<double> share;
    for (const TopToken& t : v->top) {
      token.push_back(t.token);
      c.push_back(t.count);
      occ.push_back(t.occurrences);
      share.push_back(t.token < 0 ? kNan : t.share);
    }
    const std::string g = std::string("/vocab/") + name + "/";
    out.Fixed(g + "top_token", H5T_STD_I32LE, {l, e, n}, token.data());
    out.Fixed(g + "top_count", H5T_STD_I64LE, {l, e, n}, c.data());
    out.Fixed(g + "top_occurrences", H5T_STD_I64LE, {l, e, n}, occ.data());
    out.Fixed(g + "top_share", H5T_IEEE_F64LE, {l, e, n}, share.data());
  }
}

}  // namespace

void WriteStatsHdf5(const std::filesystem::path& file, const StatsReport& r,
                    const StatsExportMeta& meta) {
  h5::SilenceErrors();
  const std::string p = file.string();
  PendingFile pending(file);
  {
    const std::string temp = pending.temp().string();
    h5::Handle f(h5::Check(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), p,
                           "cannot be created"));
    const Hdf5Out out{f.id(), p};
    WriteRootAttributes(out, r, meta);
    WriteDomainNames(out, r);
    WriteMetrics(out, r);
    WriteCountTables(out, r);
    if (r.has_logits) WriteHistograms(out, r);
    if (r.has_vocabulary) WriteVocab(out, r);
    h5::Check(H5Fclose(f.release()), p, "cannot be written");
  }
  pending.Commit();
}

void WriteStatsCsv(const std::filesystem::path& dir, const StatsReport& r,
                   const StatsExportMeta& meta) {
  const int M = r.shape.domains, L = r.shape.layers, E = r.shape.experts;
  {
    const auto file = dir / "stats.csv";
    std::ostringstream out = OpenText(file);
    out << "layer,expert,domain,metric,value,ci_low,ci_high,baseline,n,q,docs,ci_mc_error,"
           "baseline_kind\n";
    for (const StatsRow& row : r.rows)
      out << row.layer << ',' << row.expert << ',' << CsvText(DomainName(r, row.domain)) << ','
          << MetricName(row.metric) << ',' << Number(row.value) << ',' << Number(row.ci_low) << ','
          << Number(row.ci_high) << ',' << Number(row.baseline) << ',' << Number(row.n) << ','
          << Number(row.q) << ',' << row.docs << ',' << Number(row.ci_mc_error) << ','
          << DefOf(row.metric).baseline << '\n';
    Close(out, file);
  }
  {
    const auto file = dir / "coactivation.csv";
    std::ostringstream out = OpenText(file);
    out << "domain,layer,mode,expert_i,expert_j,count,count_i,p_j_given_i\n";
    for (auto [table, mode] :
         {std::pair{&r.coactivation, "all_pairs"}, {&r.coactivation_adjacent, "rank_adjacent"}}) {
      if (table->empty()) continue;
      for (int m = 0; m <= M; ++m)
        for (int l = 0; l < L; ++l) {
          const int64_t* t = table->data() + (static_cast<size_t>(m) * L + l) * E * E;
          for (int i = 0; i < E; ++i)
            for (int j = 0; j < E; ++j) {
              if (i == j) continue;
              const int64_t ci = t[i * E + i];
              out << CsvText(DomainName(r, m)) << ',' << l << ',' << mode << ',' << i << ',' << j
                  << ',' << t[i * E + j] << ',' << ci << ','
                  << Number(ci > 0 ? static_cast<double>(t[i * E + j]) / ci : kNan) << '\n';
            }
        }
    }
    Close(out, file);
  }
  {
    const auto file = dir / "transitions.csv";
    std::ostringstream out = OpenText(file);
    out << "domain,layer_from,layer_to,expert_i,expert_j,count,count_i,p_j_given_i\n";
    for (int m = 0; m <= M; ++m)
      for (int l = 0; l + 1 < L; ++l) {
        const int64_t* t = r.transitions.data() + (static_cast<size_t>(m) * (L - 1) + l) * E * E;
        const int64_t* co = r.coactivation.data() + (static_cast<size_t>(m) * L + l) * E * E;
        for (int i = 0; i < E; ++i)
          for (int j = 0; j < E; ++j) {
            const int64_t ci = co[i * E + i];
            out << CsvText(DomainName(r, m)) << ',' << l << ',' << l + 1 << ',' << i << ',' << j
                << ',' << t[i * E + j] << ',' << ci << ','
                << Number(ci > 0 ? static_cast<double>(t[i * E + j]) / ci : kNan) << '\n';
          }
      }
    Close(out, file);
  }
  {
    const auto file = dir / "histograms.csv";
    std::ostringstream out = OpenText(file);
    out << "domain,layer,histogram,bin,bin_low,bin_high,count\n";
    if (r.has_logits) {
      for (auto [h, name] : {std::pair{&r.entropy_histogram, "router_entropy_deficit"},
                             {&r.margin_histogram, "margin_logit"}})
        for (int m = 0; m <= M; ++m)
          for (int l = 0; l < L; ++l) {
            const double* edges = h->edges.data() + static_cast<size_t>(l) * (h->bins + 1);
            for (int b = 0; b < h->layer_bins[static_cast<size_t>(l)]; ++b)
              out << CsvText(DomainName(r, m)) << ',' << l << ',' << name << ',' << b << ','
                  << Number(edges[b]) << ','
                  << (std::isinf(edges[b + 1]) ? "inf" : Number(edges[b + 1])) << ','
                  << h->counts[(static_cast<size_t>(m) * L + l) * h->bins + b] << '\n';
          }
    }
    Close(out, file);
  }
  if (r.has_vocabulary) {
    const auto file = dir / "top_tokens.csv";
    std::ostringstream out = OpenText(file);
    out << "layer,expert,variant,rank,token_id,piece,count,occurrences,share\n";
    for (auto [v, name] : {std::pair{&r.vocab_input, "input"},
                           {&r.vocab_next, "next"},
                           {&r.vocab_predicted, "predicted"}})
      for (int l = 0; l < v->layers; ++l)
        for (int e = 0; e < E; ++e)
          for (int k = 0; k < v->top_n; ++k) {
            const TopToken& t = v->top[(static_cast<size_t>(l) * E + e) * v->top_n + k];
            if (t.token < 0) break;
            const std::string piece = static_cast<size_t>(t.token) < meta.pieces.size()
                                          ? meta.pieces[static_cast<size_t>(t.token)]
                                          : "";
            out << l << ',' << e << ',' << name << ',' << k + 1 << ',' << t.token << ','
                << CsvText(piece) << ',' << t.count << ',' << t.occurrences << ','
                << Number(t.share) << '\n';
          }
    Close(out, file);
  }
}

void WriteStatsJson(const std::filesystem::path& file, const StatsReport& r,
                    const StatsExportMeta& meta) {
  json metrics = json::array();
  for (const MetricDef& d : RoutingMetricDefs())
    metrics.push_back({{"name", d.name},
                       {"level", d.level == MetricLevel::kExpert ? "expert" : "layer"},
                       {"section", std::string("docs/routing-metrics.md §") + d.section},
                       {"baseline_kind", d.baseline},
                       {"description", d.description}});
  json domains = r.domains;
  domains.push_back("all");
  json rows = json::array();
  for (const StatsRow& row : r.rows)
    rows.push_back({{"layer", row.layer},
                    {"expert", row.expert},
                    {"domain", DomainName(r, row.domain)},
                    {"metric", MetricName(row.metric)},
                    {"value", JsonNumber(row.value)},
                    {"ci_low", JsonNumber(row.ci_low)},
                    {"ci_high", JsonNumber(row.ci_high)},
                    {"baseline", JsonNumber(row.baseline)},
                    {"n", JsonNumber(row.n)},
                    {"q", JsonNumber(row.q)},
                    {"docs", row.docs},
                    {"ci_mc_error", JsonNumber(row.ci_mc_error)}});

  const json j = {{"format", kStatsFormatName},
                  {"format_version", kStatsFormatVersion},
                  {"engine_version", MOESCOPE_VERSION},
                  {"inputs", meta.inputs},
                  {"incomplete_inputs", meta.incomplete},
                  {"notes", meta.notes},
                  {"options", OptionsJson(r.options)},
                  {"shape",
                   {{"num_layers", r.shape.layers},
                    {"num_experts", r.shape.experts},
                    {"top_k", r.shape.top_k},
                    {"documents", r.documents},
                    {"tokens", r.tokens}}},
                  {"domains", domains},
                  {"metrics", metrics},
                  {"test_families", FamiliesJson(r)},
                  {"rows", rows}};
  std::ostringstream out = OpenText(file);
  out << j.dump(1) << "\n";
  Close(out, file);
}

void ExportStats(const std::filesystem::path& dir, const StatsReport& report,
                 const StatsExportMeta& meta) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) Fail(dir.string(), "cannot be created (" + ec.message() + ")");
  WriteStatsHdf5(dir / "stats.h5", report, meta);
  WriteStatsCsv(dir, report, meta);
  WriteStatsJson(dir / "stats.json", report, meta);
}

}  // namespace moe
