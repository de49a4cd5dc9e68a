// The definitions of the routing metrics (metrics.h): level, section of
// docs/routing-metrics.md, baseline kind and description of each, in output order.
#include <string>
#include <string_view>

#include "analysis/stats/metrics.h"
#include "core/error.h"

namespace moe {
namespace {

using L_ = MetricLevel;

// Names of the baselines, as the files' `baseline_kind` column writes them.
constexpr const char* kUniform = "uniform";              // uniform routing: every expert alike
constexpr const char* kBalanced = "balanced";            // perfectly balanced load
constexpr const char* kLoadMatched = "load-matched";     // independent tokens with the row's load
constexpr const char* kDocShuffle = "document-shuffle";  // each document's tokens reordered
constexpr const char* kShuffledIds = "shuffled-token-ids";
constexpr const char* kTokenMix = "token-mix";    // the domain's tokens routed as elsewhere
constexpr const char* kNull = "null-hypothesis";  // a p-value: see the description
constexpr const char* kNone = "none";

constexpr MetricDef Def(Metric id, MetricLevel level, const char* section, const char* baseline,
                        const char* description) {
  return {id, MetricName(id), level, section, baseline, description};
}

constexpr std::array<MetricDef, kMetricCount> kDefs = {
    // §2.1 expert load, three conventions (always say which one).
    Def(Metric::kLoadCount, L_::kExpert, "2.1", kUniform,
        "c = tokens whose executed top-k holds the expert; baseline N*K/E"),
    Def(Metric::kAssignmentShare, L_::kExpert, "2.1", kUniform,
        "c/(N*K) (Mixtral Fig. 7 convention); baseline 1/E"),
    Def(Metric::kTokenCoverage, L_::kExpert, "2.1", kUniform,
        "c/N (OLMoE convention); baseline K/E"),
    Def(Metric::kRelativeLoad, L_::kExpert, "2.1", kUniform,
        "c/(N*K/E) (DeepSeek-V3 relative load, NeMo utilization); baseline 1"),
    Def(Metric::kImportance, L_::kExpert, "2.1", kUniform,
        "sum of combine weights w (before the scale factor; LLaMA-MoE gate_importance); baseline "
        "total/E"),
    Def(Metric::kImportanceShare, L_::kExpert, "2.1", kUniform,
        "importance / sum over experts; baseline 1/E"),
    Def(Metric::kTop1Share, L_::kExpert, "2.2", kUniform,
        "first-choice count / N (Switch f_e); baseline 1/E"),
    Def(Metric::kDead, L_::kExpert, "2.2", kBalanced, "1 when the expert has c = 0; baseline 0"),
    Def(Metric::kSoftLoadDerived, L_::kExpert, "2.1", kUniform,
        "mean softmax-over-all-E-logits probability (Switch P_e; derived, LLaMA-MoE normalizes "
        "over the top-k only), over sampled logit rows; baseline 1/E"),
    // §2.4 domain specialization (domain rows only).
    Def(Metric::kDomainSpecTopk, L_::kExpert, "2.4", kUniform,
        "OLMoE DS(e, D, K) = N_{e,D}/N_D (equals token_coverage of the domain); baseline K/E"),
    Def(Metric::kDomainSpecLiftTopk, L_::kExpert, "2.4", kUniform,
        "DS(e, D, K) / (K/E); baseline 1"),
    Def(Metric::kDomainSpecTop1, L_::kExpert, "2.4", kUniform,
        "first-choice DS(e, D, 1); baseline 1/E"),
    Def(Metric::kDomainSpecLiftTop1, L_::kExpert, "2.4", kUniform,
        "DS(e, D, 1) / (1/E); baseline 1"),
    Def(Metric::kDomainSpecPermPTopk, L_::kExpert, "2.4", kNull,
        "permutation p-value of |DS(e,D,K) - coverage over all domains| under shuffled document "
        "domain labels, (1 + #{perm >= observed}) / (1 + P); q = Benjamini-Hochberg over all "
        "layer x expert x domain cells"),
    Def(Metric::kDomainSpecPermPTop1, L_::kExpert, "2.4", kNull, "the same for DS(e, D, 1)"),
    Def(Metric::kDomainSpecLiftToken, L_::kExpert, "2.4", kTokenMix,
        "token-controlled lift: N_{e,D} / sum over token ids x of N_{x,D} * N_{x,e}/N_x, the "
        "domain's tokens routed as the same token ids are routed over all domains; baseline 1"),
    Def(Metric::kDomainSpecTokenP, L_::kExpert, "2.4", kNull,
        "p-value of the token-controlled lift: domain labels shuffled among the occurrences of "
        "each token id (a sum of hypergeometric counts, normal approximation, two-sided); q = "
        "Benjamini-Hochberg over all cells"),
    // §2.5 vocabulary specialization (all domains only).
    Def(Metric::kVocabSpecInput, L_::kExpert, "2.5", kShuffledIds,
        "mean over input tokens x (N_x >= min) whose argmax expert is e of max_e' N_{x,e'}/N_x; "
        "baseline: the same x after shuffling token ids; n = such x"),
    Def(Metric::kVocabSpecNext, L_::kExpert, "2.5", kShuffledIds,
        "the same with x = the next token of the document"),
    Def(Metric::kVocabSpecPredicted, L_::kExpert, "2.5", kShuffledIds,
        "the same with x = the model's top-1 predicted next token (the trace's "
        "/tokens/predicted); absent for traces without it"),
    // Per layer.
    Def(Metric::kTokens, L_::kLayer, "2.1", kNone, "N, tokens of the domain"),
    Def(Metric::kCvLoad, L_::kLayer, "2.2", kBalanced,
        "population std/mean of c over experts; baseline 0"),
    Def(Metric::kCvLoadUnbiased, L_::kLayer, "2.2", kBalanced,
        "sqrt of LLaMA-MoE's cv_squared: unbiased variance (/(E-1)) over mean^2 + 1e-10 "
        "= cv_load * sqrt(E/(E-1)); baseline 0"),
    Def(Metric::kCvImportance, L_::kLayer, "2.2", kBalanced,
        "population CV of importance; baseline 0"),
    Def(Metric::kCvImportanceUnbiased, L_::kLayer, "2.2", kBalanced,
        "LLaMA-MoE variant of cv_importance"),
    Def(Metric::kMaxOverMean, L_::kLayer, "2.2", kBalanced,
        "max_e c / mean_e c = MaxVio + 1; baseline 1"),
    Def(Metric::kMaxvio, L_::kLayer, "2.2", kBalanced,
        "MaxVio = max_e c / mean_e c - 1; baseline 0"),
    Def(Metric::kDeadFraction, L_::kLayer, "2.2", kBalanced, "|{e : c = 0}| / E; baseline 0"),
    Def(Metric::kLoadEntropy, L_::kLayer, "2.3", kBalanced,
        "H(assignment_share), natural log; baseline log E"),
    Def(Metric::kDiversity, L_::kLayer, "2.2", kBalanced,
        "exp(load_entropy) / E (NeMo); baseline 1"),
    Def(Metric::kRouterEntropyDerived, L_::kLayer, "2.3", kUniform,
        "mean over logit rows of H(softmax over all E logits) (derived); baseline log E"),
    Def(Metric::kRouterEntropyNormDerived, L_::kLayer, "2.3", kUniform,
        "router_entropy_derived / log E; baseline 1"),
    Def(Metric::kTopkMassDerived, L_::kLayer, "2.3", kUniform,
        "mean softmax-over-all mass of the executed experts (k = the token's executed "
        "selections); baseline K/E"),
    Def(Metric::kMarginLogit, L_::kLayer, "2.3", kNone,
        "mean boundary margin z_(k) - z_(k+1) on sorted logits; n = rows with k < E"),
    Def(Metric::kZLossDerived, L_::kLayer, "2.3", kNone,
        "mean (log sum_e exp z_e)^2 (ST-MoE router z-loss)"),
    Def(Metric::kRepeatFirst, L_::kLayer, "2.8", kLoadMatched,
        "P[e1_t = e1_{t+1}] over adjacent tokens of one document; baseline sum_e f_e^2 with f_e "
        "the row's first-choice shares (independent tokens with this load; uniform would be 1/E)"),
    Def(Metric::kRepeatAny, L_::kLayer, "2.8", kUniform,
        "P[S_t and S_{t+1} share an expert]; baseline 1 - C(E-K,K)/C(E,K) (the document-shuffle "
        "baseline is in repeat_any_lift_doc)"),
    Def(Metric::kRepeatOverlap, L_::kLayer, "2.8", kLoadMatched,
        "mean |S_t ∩ S_{t+1}|; baseline sum_e (c_e/N)^2 (independent tokens with this load; "
        "uniform would be K^2/E)"),
    Def(Metric::kRepeatFirstLiftLoad, L_::kLayer, "2.8", kLoadMatched,
        "repeat_first / sum_e f_e^2; baseline 1"),
    Def(Metric::kRepeatFirstLiftDoc, L_::kLayer, "2.8", kDocShuffle,
        "same-first pairs / their expectation with every document's tokens in random order "
        "(sum over documents of sum_e c1_e (c1_e - 1) / n_d); 1 = no more than each document's "
        "own load explains; baseline 1"),
    Def(Metric::kRepeatAnyLiftDoc, L_::kLayer, "2.8", kDocShuffle,
        "any-overlap pairs / their document-shuffle expectation (needs E <= 256); baseline 1"),
    Def(Metric::kRepeatOverlapLiftLoad, L_::kLayer, "2.8", kLoadMatched,
        "repeat_overlap / sum_e (c_e/N)^2; baseline 1"),
    Def(Metric::kRepeatOverlapLiftDoc, L_::kLayer, "2.8", kDocShuffle,
        "overlap / its document-shuffle expectation (sum over documents of sum_e c_e (c_e - 1) / "
        "n_d); baseline 1"),
    Def(Metric::kRepeatFirstD2, L_::kLayer, "2.8", kLoadMatched,
        "P[e1_t = e1_{t+2}] over tokens 2 apart in one document; baseline sum_e f_e^2"),
    Def(Metric::kRepeatFirstD4, L_::kLayer, "2.8", kLoadMatched, "the same 4 apart"),
    Def(Metric::kRepeatFirstD8, L_::kLayer, "2.8", kLoadMatched, "the same 8 apart"),
    Def(Metric::kRepeatFirstD16, L_::kLayer, "2.8", kLoadMatched, "the same 16 apart"),
    Def(Metric::kRepeatFirstD32, L_::kLayer, "2.8", kLoadMatched, "the same 32 apart"),
    Def(Metric::kRepeatFirstD64, L_::kLayer, "2.8", kLoadMatched, "the same 64 apart"),
    Def(Metric::kVocabSpecInputMean, L_::kLayer, "2.5", kShuffledIds,
        "mean over input tokens x with N_x >= min of max_e N_{x,e}/N_x; baseline: shuffled token "
        "ids; n = such x"),
    Def(Metric::kVocabSpecNextMean, L_::kLayer, "2.5", kShuffledIds,
        "the same with x = the next token"),
    Def(Metric::kVocabSpecPredictedMean, L_::kLayer, "2.5", kShuffledIds,
        "the same with x = the model's top-1 predicted next token"),
};

constexpr bool DefsInOrder() {
  for (size_t i = 0; i < kMetricCount; ++i)
    if (MetricSlot(kDefs[i].id) != i) return false;
  return true;
}
static_assert(DefsInOrder(), "kDefs must list the metrics in enumerator order");

}  // namespace

const std::array<MetricDef, kMetricCount>& RoutingMetricDefs() {
  return kDefs;
}

const MetricDef& DefOf(Metric metric) {
  return kDefs[MetricSlot(metric)];
}

Metric ParseMetricName(std::string_view name, const std::string& where) {
  if (const std::optional<Metric> m = ParseMetric(name)) return *m;
  std::string known;
  for (const MetricDef& d : kDefs) known += std::string(known.empty() ? "" : ", ") + d.name;
  Fail(where, "unknown metric '" + std::string(name) + "' (the metrics are " + known + ")");
}

}  // namespace moe
