#pragma once
// The routing metrics of `moescope stats`, each a function of one domain slice of the
// accumulator's sums (sums_layout.h), with the definitions of docs/routing-metrics.md §2. Because
// they are functions of sums, the same code gives the point estimate, every bootstrap
// replicate (percentile confidence intervals) and every permutation replicate.
//
// Rows are (layer, expert, domain, metric): expert -1 for per-layer metrics; domain M means all
// domains together. docs/stats-format.md lists every metric and its baseline.
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/histogram.h"
#include "analysis/stats/metric_id.h"
#include "analysis/stats/vocab_specialization.h"

namespace moe {

enum class MetricLevel { kExpert, kLayer };

struct MetricDef {
  Metric id;
  const char* name;  // MetricName(id)
  MetricLevel level;
  const char* section;      // section of docs/routing-metrics.md
  const char* baseline;     // what the baseline column is: "uniform", "load-matched", ...
  const char* description;  // including the baseline's formula
};

// Every metric, indexed by Metric (output order).
const std::array<MetricDef, kMetricCount>& RoutingMetricDefs();
const MetricDef& DefOf(Metric metric);
// A metric name from outside the code (a CSV column, a user's option), parsed once. Throws Error
// "<where>: unknown metric '<name>' ..." when no metric has that name.
Metric ParseMetricName(std::string_view name, const std::string& where);

struct StatsRow {
  int layer = 0;
  int expert = -1;  // -1: a per-layer metric
  int domain = 0;   // 0..M-1, or M for all domains
  Metric metric = Metric::kLoadCount;
  double value = 0;
  double ci_low = 0, ci_high = 0;  // NaN when there is no interval
  double baseline = 0;             // NaN when there is none
  double n = 0;  // what the value is a rate over: tokens, token pairs, logit rows or token ids
  double q = std::numeric_limits<double>::quiet_NaN();  // Benjamini–Hochberg q of a p-value row
  int64_t docs = 0;  // documents the interval is over (no interval below min_documents)
  double ci_mc_error = std::numeric_limits<double>::quiet_NaN();  // Monte-Carlo error of the
                                                                  // interval's half-width
};

// A family of tests corrected together (Benjamini–Hochberg): every cell of one p-value metric.
struct TestFamily {
  Metric metric;            // the p-value metric
  int64_t tests = 0;        // cells with a p-value
  int permutations = 0;     // Monte-Carlo permutations behind each p (0: an analytic test)
  double min_p = 0;         // the smallest attainable p-value (1 / (1 + P); 0 for analytic tests)
  double fdr = 0;           // the level the discoveries are counted at
  int64_t discoveries = 0;  // cells with q <= fdr
};

// Everything `moescope stats` reports. Matrices carry a final "all domains" row.
struct StatsReport {
  StatsShape shape;
  StatsOptions options;
  std::vector<std::string> domains;  // M names; "all" is row M
  int64_t documents = 0, tokens = 0;
  bool has_logits = false;
  std::vector<StatsRow> rows;
  std::vector<int64_t> coactivation;           // [M+1, L, E, E]
  std::vector<int64_t> coactivation_adjacent;  // [M+1, L, E, E] or empty
  std::vector<int64_t> transitions;            // [M+1, L-1, E, E]
  // Quantile-binned histograms over rows M+1 (histogram.h): the router entropy deficit
  // 1 - H / log E and the top-k boundary margin, from sampled logit rows.
  QuantileHistogram entropy_histogram, margin_histogram;
  bool has_vocabulary = false;
  VocabSpecialization vocab_input, vocab_next;
  VocabSpecialization vocab_predicted;  // layers = 0 when the traces record no predictions
  std::vector<TestFamily> families;

  // The row of (metric, layer, expert, domain), or null when the report has none.
  const StatsRow* Find(Metric metric, int layer, int expert, int domain) const;
};

class TokenControlledPass;

// The report of a first pass (`acc`) and, when given, the token-controlled specialization pass
// over the same documents (token_controlled.h); p-value families are corrected here.
StatsReport BuildStatsReport(const RoutingAccumulator& acc, std::vector<std::string> domains,
                             const TokenControlledPass* token_controlled = nullptr);

}  // namespace moe
