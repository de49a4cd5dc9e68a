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
#include <string>
#include <string_view>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/metric_id.h"
#include "analysis/stats/vocab_specialization.h"

namespace moe {

enum class MetricLevel { kExpert, kLayer };

struct MetricDef {
  Metric id;
  const char* name;  // MetricName(id)
  MetricLevel level;
  const char* section;      // section of docs/routing-metrics.md
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
  std::vector<int64_t> entropy_histogram;      // [M+1, L, entropy_bins]
  std::vector<int64_t> margin_histogram;       // [M+1, L, margin_bins]
  bool has_vocabulary = false;
  VocabSpecialization vocab_input, vocab_next;

  // The row of (metric, layer, expert, domain), or null when the report has none.
  const StatsRow* Find(Metric metric, int layer, int expert, int domain) const;
};

StatsReport BuildStatsReport(const RoutingAccumulator& acc, std::vector<std::string> domains);

}  // namespace moe
