#pragma once
// `moescope prune-curve` (docs/pruning.md): the ablation pass over the pruning curve's policies
// (prune_plan.h: each score's removed set at each ratio, with random sets of the same size per
// layer as controls), written as `moescope ablate` writes its results, and each set compared
// with its random controls: the difference of mean ΔNLL per domain (set minus the mean of its
// controls) with a bootstrap interval over documents, a two-sided bootstrap p-value and
// Benjamini–Hochberg q-values over the family of every set × domain.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "analysis/ablation/ablation.h"
#include "analysis/prune/prune_plan.h"

namespace moe {

struct PruneVsRandom {
  std::string set;  // "reap-25%"
  int domain = 0;   // M = all documents
  int controls = 0;
  double set_delta_nll = 0, random_delta_nll = 0;  // mean ΔNLL per scored token
  Estimate difference;                             // set − controls
  double p_value = 0, q_value = 0;                 // NaN without bootstrap
};

// Per document, the set's and its controls' (averaged) ΔNLL sums, from per-token values.
// Throws Error when a result lacks its per-token values.
std::vector<PruneVsRandom> ComparePruneToRandom(const std::vector<AblationResult>& results,
                                                const ScoredTokens& tokens, int bootstrap,
                                                uint64_t seed, double level);

struct PruneCurveOptions {
  AblationOptions ablation;  // corpus, output, pass settings (token values are kept)
  std::vector<PruneCriterion> criteria;
  std::vector<double> ratios = {0.25, 0.5};
  bool global = false;
  int controls = 3;
};

struct PruneCurveSummary {
  AblationSummary ablation;
  std::vector<PruneVsRandom> comparison;  // empty when interrupted
  std::string comparison_csv;             // <output>.vs-random.csv
};

PruneCurveSummary RunPruneCurve(const LoadedModel& model, const ExpertImportance& importance,
                                PruneCurveOptions options);

// The comparison CSV (`<output>.vs-random.csv`: set, domain, controls, set_delta_nll,
// random_delta_nll, difference, ci_low, ci_high, p_value, q_value), and read back: a domain
// name of `domains`, or "all" (M). Reading throws Error naming the file, line and column.
std::string PruneComparisonCsv(const std::vector<PruneVsRandom>& rows,
                               const std::vector<std::string>& domains);
std::vector<PruneVsRandom> ReadPruneComparison(const std::filesystem::path& csv,
                                               const std::vector<std::string>& domains);

// A prune-curve results file read back: its policies (AblationFile::Read: the baseline, each
// pruned set, its random controls) and the comparison with random pruning from
// `<file>.vs-random.csv` when it is beside the file.
struct PruneCurveFile {
  std::vector<std::string> domains;       // [M]
  std::vector<AblationResult> results;    // sweep order, without per-token values
  std::vector<PruneVsRandom> comparison;  // empty without the CSV
  std::string comparison_csv;             // the CSV read, or empty
};
// Throws Error naming the file: not an ablation results file (AblationFile::Read's errors), no
// pruned set (policy kind "prune") in it, a malformed comparison CSV.
PruneCurveFile ReadPruneCurve(const std::filesystem::path& results);

// What a pruned set's name (PruneCurvePolicies: "<score>-<percent>%") says: "reap-25%" is the
// score "reap" at ratio 0.25. nullopt for a name of another shape.
struct PruneSetName {
  std::string score;
  double ratio = 0;
};
std::optional<PruneSetName> ParsePruneSetName(const std::string& name);

// One line per set: ΔNLL of the set and of random pruning, their difference with its interval
// and q-value, over all documents, then per domain.
std::string FormatPruneComparison(const std::vector<PruneVsRandom>& rows,
                                  const std::vector<std::string>& domains);

}  // namespace moe
