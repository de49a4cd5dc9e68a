#pragma once
// Typed ids of the routing metrics of `moescope stats` (metrics.h defines them). Code names a
// metric by its enumerator; the name string exists only at the edges: the files written
// (stats.csv, stats.json, stats.h5 keep docs/stats-format.md's names and order) and names that
// come from outside (a CSV column, a user's option), parsed once with ParseMetric. Header only
// and free of the statistics code, so the studio's views, which link no analysis library, can
// name metrics too.
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace moe {

// One enumerator per metric, in output order (docs/stats-format.md's tables).
enum class Metric {
  // Per expert.
  kLoadCount,
  kAssignmentShare,
  kTokenCoverage,
  kRelativeLoad,
  kImportance,
  kImportanceShare,
  kTop1Share,
  kDead,
  kSoftLoadDerived,
  kDomainSpecTopk,
  kDomainSpecLiftTopk,
  kDomainSpecTop1,
  kDomainSpecLiftTop1,
  kDomainSpecPermPTopk,
  kDomainSpecPermPTop1,
  kDomainSpecLiftToken,
  kDomainSpecTokenP,
  kVocabSpecInput,
  kVocabSpecNext,
  kVocabSpecPredicted,
  // Per layer.
  kTokens,
  kCvLoad,
  kCvLoadUnbiased,
  kCvImportance,
  kCvImportanceUnbiased,
  kMaxOverMean,
  kMaxvio,
  kDeadFraction,
  kLoadEntropy,
  kDiversity,
  kRouterEntropyDerived,
  kRouterEntropyNormDerived,
  kTopkMassDerived,
  kMarginLogit,
  kZLossDerived,
  kRepeatFirst,
  kRepeatAny,
  kRepeatOverlap,
  kRepeatFirstLiftLoad,
  kRepeatFirstLiftDoc,
  kRepeatAnyLiftDoc,
  kRepeatOverlapLiftLoad,
  kRepeatOverlapLiftDoc,
  kRepeatFirstD2,
  kRepeatFirstD4,
  kRepeatFirstD8,
  kRepeatFirstD16,
  kRepeatFirstD32,
  kRepeatFirstD64,
  kVocabSpecInputMean,
  kVocabSpecNextMean,
  kVocabSpecPredictedMean,
};

inline constexpr size_t kMetricCount = static_cast<size_t>(Metric::kVocabSpecPredictedMean) + 1;

constexpr size_t MetricSlot(Metric m) {
  return static_cast<size_t>(m);
}

struct MetricNameEntry {
  Metric id;
  const char* name;  // as written to the output files
};

// Each enumerator beside its name, at the enumerator's index (checked below).
inline constexpr std::array<MetricNameEntry, kMetricCount> kMetricNames = {{
    {Metric::kLoadCount, "load_count"},
    {Metric::kAssignmentShare, "assignment_share"},
    {Metric::kTokenCoverage, "token_coverage"},
    {Metric::kRelativeLoad, "relative_load"},
    {Metric::kImportance, "importance"},
    {Metric::kImportanceShare, "importance_share"},
    {Metric::kTop1Share, "top1_share"},
    {Metric::kDead, "dead"},
    {Metric::kSoftLoadDerived, "soft_load_derived"},
    {Metric::kDomainSpecTopk, "domain_spec_topk"},
    {Metric::kDomainSpecLiftTopk, "domain_spec_lift_topk"},
    {Metric::kDomainSpecTop1, "domain_spec_top1"},
    {Metric::kDomainSpecLiftTop1, "domain_spec_lift_top1"},
    {Metric::kDomainSpecPermPTopk, "domain_spec_perm_p_topk"},
    {Metric::kDomainSpecPermPTop1, "domain_spec_perm_p_top1"},
    {Metric::kDomainSpecLiftToken, "domain_spec_lift_token"},
    {Metric::kDomainSpecTokenP, "domain_spec_token_p"},
    {Metric::kVocabSpecInput, "vocab_spec_input"},
    {Metric::kVocabSpecNext, "vocab_spec_next"},
    {Metric::kVocabSpecPredicted, "vocab_spec_predicted"},
    {Metric::kTokens, "tokens"},
    {Metric::kCvLoad, "cv_load"},
    {Metric::kCvLoadUnbiased, "cv_load_unbiased"},
    {Metric::kCvImportance, "cv_importance"},
    {Metric::kCvImportanceUnbiased, "cv_importance_unbiased"},
    {Metric::kMaxOverMean, "max_over_mean"},
    {Metric::kMaxvio, "maxvio"},
    {Metric::kDeadFraction, "dead_fraction"},
    {Metric::kLoadEntropy, "load_entropy"},
    {Metric::kDiversity, "diversity"},
    {Metric::kRouterEntropyDerived, "router_entropy_derived"},
    {Metric::kRouterEntropyNormDerived, "router_entropy_norm_derived"},
    {Metric::kTopkMassDerived, "topk_mass_derived"},
    {Metric::kMarginLogit, "margin_logit"},
    {Metric::kZLossDerived, "z_loss_derived"},
    {Metric::kRepeatFirst, "repeat_first"},
    {Metric::kRepeatAny, "repeat_any"},
    {Metric::kRepeatOverlap, "repeat_overlap"},
    {Metric::kRepeatFirstLiftLoad, "repeat_first_lift_load"},
    {Metric::kRepeatFirstLiftDoc, "repeat_first_lift_doc"},
    {Metric::kRepeatAnyLiftDoc, "repeat_any_lift_doc"},
    {Metric::kRepeatOverlapLiftLoad, "repeat_overlap_lift_load"},
    {Metric::kRepeatOverlapLiftDoc, "repeat_overlap_lift_doc"},
    {Metric::kRepeatFirstD2, "repeat_first_d2"},
    {Metric::kRepeatFirstD4, "repeat_first_d4"},
    {Metric::kRepeatFirstD8, "repeat_first_d8"},
    {Metric::kRepeatFirstD16, "repeat_first_d16"},
    {Metric::kRepeatFirstD32, "repeat_first_d32"},
    {Metric::kRepeatFirstD64, "repeat_first_d64"},
    {Metric::kVocabSpecInputMean, "vocab_spec_input_mean"},
    {Metric::kVocabSpecNextMean, "vocab_spec_next_mean"},
    {Metric::kVocabSpecPredictedMean, "vocab_spec_predicted_mean"},
}};

constexpr bool MetricNamesInOrder() {
  for (size_t i = 0; i < kMetricCount; ++i)
    if (MetricSlot(kMetricNames[i].id) != i) return false;
  return true;
}
static_assert(MetricNamesInOrder(), "kMetricNames must list the metrics in enumerator order");

constexpr const char* MetricName(Metric m) {
  return kMetricNames[MetricSlot(m)].name;
}

// Every metric, in output order.
inline constexpr std::array<Metric, kMetricCount> kAllMetrics = [] {
  std::array<Metric, kMetricCount> all{};
  for (size_t i = 0; i < kMetricCount; ++i) all[i] = kMetricNames[i].id;
  return all;
}();

// The metric called `name` in the output files; nullopt when there is none (metrics.h's
// ParseMetricName throws an error naming it instead).
constexpr std::optional<Metric> ParseMetric(std::string_view name) {
  for (const MetricNameEntry& e : kMetricNames)
    if (name == e.name) return e.id;
  return std::nullopt;
}

}  // namespace moe
