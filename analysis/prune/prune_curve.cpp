#include "analysis/prune/prune_curve.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "analysis/ablation/ablation_estimates.h"
#include "analysis/ablation/ablation_file.h"
#include "analysis/common/csv_table.h"
#include "analysis/stats/multiplicity.h"
#include "analysis/stats/resampling.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// Σ ΔNLL of each document [D].
std::vector<double> DocumentSums(const AblationResult& r, const ScoredTokens& t) {
  if (static_cast<int64_t>(r.delta_nll.size()) != t.count())
    Fail("prune-curve", "policy " + Quoted(r.name) + " has no per-token ΔNLL to compare");
  std::vector<double> sums(t.doc_domain.size(), 0.0);
  for (size_t d = 0; d < sums.size(); ++d)
    for (int64_t i = t.doc_offset[d]; i < t.doc_offset[d + 1]; ++i)
      sums[d] += r.delta_nll[static_cast<size_t>(i)];
  return sums;
}

}  // namespace

std::string PruneComparisonCsv(const std::vector<PruneVsRandom>& rows,
                               const std::vector<std::string>& domains) {
  std::ostringstream out;
  out << std::setprecision(9)
      << "set,domain,controls,set_delta_nll,random_delta_nll,difference,ci_low,ci_high,p_value,"
         "q_value\n";
  for (const PruneVsRandom& r : rows)
    out << r.set << ','
        << (r.domain < static_cast<int>(domains.size()) ? domains[static_cast<size_t>(r.domain)]
                                                        : "all")
        << ',' << r.controls << ',' << r.set_delta_nll << ',' << r.random_delta_nll << ','
        << r.difference.value << ',' << r.difference.ci_low << ',' << r.difference.ci_high << ','
        << r.p_value << ',' << r.q_value << '\n';
  return out.str();
}

std::vector<PruneVsRandom> ReadPruneComparison(const std::filesystem::path& path,
                                               const std::vector<std::string>& domains) {
  const CsvTable t = CsvTable::Read(path);
  const int set = t.Column("set"), domain = t.Column("domain"), controls = t.Column("controls"),
            set_nll = t.Column("set_delta_nll"), random_nll = t.Column("random_delta_nll"),
            diff = t.Column("difference"), low = t.Column("ci_low"), high = t.Column("ci_high"),
            p = t.Column("p_value"), q = t.Column("q_value");
  std::vector<PruneVsRandom> rows;
  for (size_t i = 0; i < t.rows(); ++i) {
    PruneVsRandom r;
    r.set = t.Text(i, set);
    const std::string& name = t.Text(i, domain);
    r.domain = static_cast<int>(domains.size());
    if (name != "all") {
      auto it = std::find(domains.begin(), domains.end(), name);
      if (it == domains.end())
        throw Error(t.Where(i, domain) + ": " + Quoted(Clipped(name)) +
                    " is not a domain of the results file");
      r.domain = static_cast<int>(it - domains.begin());
    }
    r.controls = static_cast<int>(t.Integer(i, controls));
    r.set_delta_nll = t.Number(i, set_nll);
    r.random_delta_nll = t.Number(i, random_nll);
    r.difference = {t.Number(i, diff), t.Number(i, low), t.Number(i, high)};
    r.p_value = t.Number(i, p);
    r.q_value = t.Number(i, q);
    rows.push_back(r);
  }
  return rows;
}

PruneCurveFile ReadPruneCurve(const std::filesystem::path& results) {
  PruneCurveFile f;
  f.results = AblationFile::Read(results, &f.domains);
  bool pruned = false;
  for (AblationResult& r : f.results) {
    pruned = pruned || r.kind == "prune";
    r.delta_nll.clear(), r.kl.clear(), r.agree.clear();
  }
  if (!pruned)
    Fail(results.string(),
         "holds no pruned set (policy kind 'prune'): not a prune-curve results file");
  const std::filesystem::path csv = results.string() + ".vs-random.csv";
  std::error_code ec;
  if (std::filesystem::exists(csv, ec)) {
    f.comparison = ReadPruneComparison(csv, f.domains);
    f.comparison_csv = csv.string();
  }
  return f;
}

std::optional<PruneSetName> ParsePruneSetName(const std::string& name) {
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || name.size() < dash + 3 || name.back() != '%')
    return std::nullopt;
  const std::string percent = name.substr(dash + 1, name.size() - dash - 2);
  char* end = nullptr;
  const double v = std::strtod(percent.c_str(), &end);
  if (end != percent.c_str() + percent.size() || !(v > 0 && v < 100)) return std::nullopt;
  return PruneSetName{name.substr(0, dash), v / 100};
}

std::vector<PruneVsRandom> ComparePruneToRandom(const std::vector<AblationResult>& results,
                                                const ScoredTokens& t, int B, uint64_t seed,
                                                double level) {
  const int M = static_cast<int>(t.domains.size());
  const size_t D = t.doc_domain.size();
  const std::vector<uint8_t> weights = BootstrapWeights(B, static_cast<int64_t>(D), seed);
  std::vector<double> tokens(D);
  for (size_t d = 0; d < D; ++d)
    tokens[d] = static_cast<double>(t.doc_offset[d + 1] - t.doc_offset[d]);
  std::vector<PruneVsRandom> rows;
  for (const AblationResult& set : results) {
    if (set.kind != "prune") continue;
    // A set names the set whose controls it shares (itself when they were drawn for it); files
    // written before sets named theirs have controls named after each set.
    const std::string& group = set.control_of.empty() ? set.name : set.control_of;
    std::vector<const AblationResult*> controls;
    for (const AblationResult& c : results)
      if (c.kind == "random_control" && c.control_of == group) controls.push_back(&c);
    if (controls.empty()) continue;
    const std::vector<double> s = DocumentSums(set, t);
    std::vector<double> c(D, 0.0);
    for (const AblationResult* r : controls) {
      const std::vector<double> x = DocumentSums(*r, t);
      for (size_t d = 0; d < D; ++d) c[d] += x[d] / static_cast<double>(controls.size());
    }
    for (int m = 0; m <= M; ++m) {
      auto in = [&](size_t d) { return m == M || t.doc_domain[d] == m; };
      auto ratio = [&](const uint8_t* w, const std::vector<double>& num) {
        double n = 0, den = 0;
        for (size_t d = 0; d < D; ++d)
          if (in(d)) {
            const double wd = w ? w[d] : 1.0;
            n += wd * num[d], den += wd * tokens[d];
          }
        return den > 0 ? n / den : kNan;
      };
      std::vector<double> diff(D);
      for (size_t d = 0; d < D; ++d) diff[d] = s[d] - c[d];
      PruneVsRandom row;
      row.set = set.name;
      row.domain = m;
      row.controls = static_cast<int>(controls.size());
      row.set_delta_nll = ratio(nullptr, s);
      row.random_delta_nll = ratio(nullptr, c);
      row.difference = {ratio(nullptr, diff), kNan, kNan};
      row.p_value = kNan;
      if (B > 0) {
        std::vector<double> reps(static_cast<size_t>(B));
        int below = 0, above = 0, finite = 0;
        for (int b = 0; b < B; ++b) {
          reps[static_cast<size_t>(b)] = ratio(weights.data() + static_cast<size_t>(b) * D, diff);
          if (std::isnan(reps[static_cast<size_t>(b)])) continue;
          ++finite;
          below += reps[static_cast<size_t>(b)] <= 0;
          above += reps[static_cast<size_t>(b)] >= 0;
        }
        if (finite > 0)  // two-sided, with the +1 that keeps a Monte-Carlo p-value above 0
          row.p_value = std::min(1.0, 2.0 * (1.0 + std::min(below, above)) / (1.0 + finite));
        std::tie(row.difference.ci_low, row.difference.ci_high) = PercentileInterval(reps, level);
      }
      rows.push_back(row);
    }
  }
  std::vector<double> p;
  for (const PruneVsRandom& r : rows) p.push_back(r.p_value);
  const std::vector<double> q = BenjaminiHochberg(p);
  for (size_t i = 0; i < rows.size(); ++i) rows[i].q_value = q[i];
  return rows;
}

PruneCurveSummary RunPruneCurve(const LoadedModel& model, const ExpertImportance& importance,
                                PruneCurveOptions o) {
  if (o.controls < 1)
    Fail("--random-controls", "must be at least 1: random pruning is the control");
  const std::vector<AblationPolicy> policies = PruneCurvePolicies(
      model.config(), importance, o.criteria, o.ratios, o.global, o.controls, o.ablation.pass.seed);
  o.ablation.pass.token_values = true;
  PruneCurveSummary s;
  s.ablation = RunAblation(model, policies, o.ablation);
  if (s.ablation.interrupted) return s;
  // The scored tokens of the same corpus, read as the ablation read it.
  TraceRunSettings run = o.ablation.run;
  const Corpus corpus = ReadCorpus(
      std::vector<std::filesystem::path>(run.corpus_files.begin(), run.corpus_files.end()),
      model.tokenizer.get(), model.config().vocab_size, CorpusOptionsOf(run));
  s.comparison =
      ComparePruneToRandom(s.ablation.results, ScoredTokens::Of(corpus), o.ablation.pass.bootstrap,
                           o.ablation.pass.seed, o.ablation.pass.ci_level);
  s.comparison_csv = o.ablation.output.string() + ".vs-random.csv";
  WriteFileAtomically(s.comparison_csv, PruneComparisonCsv(s.comparison, s.ablation.domains));
  return s;
}

std::string FormatPruneComparison(const std::vector<PruneVsRandom>& rows,
                                  const std::vector<std::string>& domains) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4)
      << "pruned by score vs random pruning of the same size per layer (ΔNLL per token; "
         "difference = score - random, bootstrap interval over documents, BH q-value)\n";
  for (const PruneVsRandom& r : rows) {
    const std::string domain = r.domain < static_cast<int>(domains.size())
                                   ? domains[static_cast<size_t>(r.domain)]
                                   : "all";
    out << std::left << std::setw(24) << r.set << std::setw(14) << domain << std::right << " score "
        << std::setw(8) << r.set_delta_nll << "  random " << std::setw(8) << r.random_delta_nll
        << "  diff " << std::setw(8) << r.difference.value << " [" << r.difference.ci_low << ", "
        << r.difference.ci_high << "]  q " << r.q_value << "\n";
  }
  return out.str();
}

}  // namespace moe
