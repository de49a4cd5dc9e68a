// compare's files and table: compare.csv, compare.json, compare.h5 and the text table of
// `moescope compare` (routing_compare.h).
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/common/hdf5_util.h"
#include "analysis/stats/routing_compare.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kIntervalMethod =
    "cluster-robust ratio interval over documents: r = sum_d a_d / sum_d n_d, var = sum_d "
    "(a_d - r n_d)^2 * G/(G-1) / (sum_d n_d)^2, r -+ t(G-1) * sqrt(var), clipped to [0, 1]; G = "
    "documents with n_d > 0";

std::string Number(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

}  // namespace

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
    out << "layer,expert,domain,metric,value,ci_low,ci_high,n,bin_low,bin_high,documents\n";
    for (const CompareRow& row : r.rows)
      out << row.layer << ',' << row.expert << ',' << domain(row.domain) << ','
          << CompareMetricName(row.metric) << ',' << Number(row.value) << ',' << Number(row.ci_low)
          << ',' << Number(row.ci_high) << ',' << Number(row.n) << ',' << Number(row.bin_low) << ','
          << Number(row.bin_high) << ','
          << (row.documents > 0 ? std::to_string(row.documents) : std::string()) << '\n';
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
      if (row.documents > 0) {
        j["ci_low"] = num(row.ci_low);
        j["ci_high"] = num(row.ci_high);
        j["documents"] = row.documents;
      }
      if (!std::isnan(row.bin_low)) {
        j["bin_low"] = row.bin_low;
        j["bin_high"] = num(row.bin_high);
      }
      rows.push_back(j);
    }
    nlohmann::json margin = nullptr;
    if (r.has_margin)
      margin = {{"mode", r.margin_binning},
                {"bins_requested", r.margin_bins_requested},
                {"edges", r.margin_edges},
                {"last_bin", "open-ended"},
                {"quantile_samples", r.margin_samples},
                {"quantile_row_stride", r.margin_row_stride}};
    const nlohmann::json j = {{"format", "moescope-compare"},
                              {"format_version", 1},
                              {"a", r.a},
                              {"b", r.b},
                              {"num_layers", r.layers},
                              {"num_experts", r.experts},
                              {"top_k_a", r.top_k_a},
                              {"top_k_b", r.top_k_b},
                              {"tokens", r.tokens},
                              {"documents", r.documents},
                              {"ci", {{"level", r.ci_level}, {"method", kIntervalMethod}}},
                              {"margin_bins", margin},
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
      if (r.has_margin) {
        size_t width = 1;
        for (const auto& e : r.margin_edges) width = std::max(width, e.size());
        std::vector<double> edges(static_cast<size_t>(r.layers) * width, kNan);
        for (size_t l = 0; l < r.margin_edges.size(); ++l)
          std::copy(r.margin_edges[l].begin(), r.margin_edges[l].end(),
                    edges.begin() + static_cast<std::ptrdiff_t>(l * width));
        ds = h5::CreateFixed(f.id(), "/margin_edges", H5T_IEEE_F64LE,
                             {static_cast<hsize_t>(r.layers), static_cast<hsize_t>(width)},
                             {p, "/margin_edges"});
        h5::WriteAll(ds.id(), H5T_NATIVE_DOUBLE, edges.data(), {p, "/margin_edges"});
        h5::WriteAttribute(ds.id(), "mode", r.margin_binning, {p, "/margin_edges"});
        h5::WriteAttribute(ds.id(), "bins_requested", int64_t{r.margin_bins_requested},
                           {p, "/margin_edges"});
      }
      ds = h5::Handle();
      h5::Check(H5Fclose(f.release()), p, "cannot be written");
    }
    pending.Commit();
  }
}

std::string FormatCompareTable(const CompareReport& r) {
  const int M = static_cast<int>(r.domains.size());
  char line[256];
  const int pct = static_cast<int>(std::lround(r.ci_level * 100));
  std::snprintf(line, sizeof(line),
                "layer  flip(top1)  [%d%% CI]            overlap(top-k)  [%d%% CI]            "
                "jaccard  load cos  load TV\n",
                pct, pct);
  std::string out = line;
  auto interval = [](const CompareRow* row) {
    char buf[64];
    if (row == nullptr || std::isnan(row->ci_low))
      std::snprintf(buf, sizeof(buf), "%-18s", "[-]");
    else
      std::snprintf(buf, sizeof(buf), "[%.4f, %.4f]", row->ci_low, row->ci_high);
    return std::string(buf);
  };
  for (int l = 0; l < r.layers; ++l) {
    auto v = [&](CompareMetric metric) {
      const CompareRow* row = r.Find(metric, l, -1, M);
      return row ? row->value : kNan;
    };
    std::snprintf(line, sizeof(line), "%5d  %10.4f  %-18s  %14.4f  %-18s  %7.4f  %8.4f  %7.4f\n", l,
                  v(CompareMetric::kFlipRateTop1),
                  interval(r.Find(CompareMetric::kFlipRateTop1, l, -1, M)).c_str(),
                  v(CompareMetric::kTopkOverlap),
                  interval(r.Find(CompareMetric::kTopkOverlap, l, -1, M)).c_str(),
                  v(CompareMetric::kTopkJaccard), v(CompareMetric::kLoadCosine),
                  v(CompareMetric::kLoadTv));
    out += line;
  }
  if (r.has_margin) {
    if (r.margin_binning == "quantile")
      std::snprintf(line, sizeof(line),
                    "\nflip rate by A's top-k margin, all domains (%d quantile bins of A's margins "
                    "per layer; %d%% CI over documents):\n",
                    r.margin_bins_requested, pct);
    else
      std::snprintf(line, sizeof(line),
                    "\nflip rate by A's top-k margin, all domains (fixed edges; %d%% CI over "
                    "documents):\n",
                    pct);
    out += line;
    out += "layer  margin bin                tokens  flip(top1)  [CI]\n";
    for (int l = 0; l < r.layers; ++l)
      for (const CompareRow* row : r.MarginRows(l, M)) {
        char bin[64];
        if (std::isinf(row->bin_high))
          std::snprintf(bin, sizeof(bin), "[%.4g, inf)", row->bin_low);
        else
          std::snprintf(bin, sizeof(bin), "[%.4g, %.4g)", row->bin_low, row->bin_high);
        std::snprintf(line, sizeof(line), "%5d  %-22s  %9.0f  %10.4f  %s\n", l, bin, row->n,
                      row->value, interval(row).c_str());
        out += line;
      }
  }
  if (!r.note.empty()) out += "note: " + r.note + "\n";
  return out;
}

}  // namespace moe
