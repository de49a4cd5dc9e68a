#pragma once
// Vocabulary specialization (docs/routing-metrics.md §2.5, OLMoE §5) from the exact token id ×
// expert tables of a RoutingAccumulator:
//   VS_l(e, x) = N_{l,x,e} / N_x   (N_{l,x,e}: occurrences of x whose top-k at l holds e)
//   v_l(x)     = max_e VS_l(e, x)  (allenai/OLMoE run_moe_analysis.py: the count of x's most
//                                   frequent expert over len(exp_ids)//K = N_x)
// keeping only tokens with N_x >= min_count. Per layer: the mean of v_l(x); per expert: the
// mean of v_l(x) over the x whose argmax expert (lowest index on ties) is e, and how many.
// x is the input token or the ground-truth next token of the same document.
//
// Shuffled baseline (§2.5, "Recommended addition"): the same statistic after token ids are
// shuffled across all occurrences, i.e. each x's N_x occurrences take executed sets drawn from
// the layer's pooled set distribution. Computed by seeded Monte Carlo (with replacement, which
// for N_x much smaller than N is the shuffle); tokens with N_x > kMaxDraws use kMaxDraws draws
// (their chance level is then a little overstated: by about sqrt(f(1-f)/kMaxDraws)).
//
// Confidence intervals: a percentile bootstrap over the kept token types x (the units the means
// average over), B seeded resamples with replacement of each cell's v_l(x) values. The document
// bootstrap of the other metrics would need a V x E table per replicate; token types are the
// natural unit here (OLMoE reports the statistic per token type).
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "analysis/stats/executed_set.h"

namespace moe {

struct TopToken {
  int32_t token = 0;
  int64_t count = 0;        // N_{l,x,e}
  int64_t occurrences = 0;  // N_x
  double share = 0;         // VS_l(e, x)
};

struct VocabSpecialization {
  int layers = 0, experts = 0, top_n = 0;
  int64_t kept_tokens = 0;                            // distinct x with N_x >= min_count
  std::vector<double> layer_mean;                     // [L] mean v_l(x); NaN when no x is kept
  std::vector<double> layer_shuffled;                 // [L] the same, shuffled
  std::vector<double> layer_ci_low, layer_ci_high;    // [L], NaN without bootstrap
  std::vector<double> expert_mean;                    // [L, E]
  std::vector<double> expert_ci_low, expert_ci_high;  // [L, E], NaN without bootstrap
  std::vector<double> expert_shuffled;                // [L, E] shuffled v_l(x) of the same x
  std::vector<int64_t> expert_tokens;                 // [L, E] kept x whose argmax is e
  std::vector<TopToken> top;                          // [L, E, top_n], fewer filled: token -1
};

inline constexpr int64_t kMaxDraws = 20000;

// table [L, V, E]; occurrences [V]; sets: per layer, executed-set bit mask -> tokens.
VocabSpecialization ComputeVocabSpecialization(const std::vector<uint32_t>& table,
                                               const std::vector<int64_t>& occurrences,
                                               const std::vector<ExecutedSetCounts>& sets,
                                               int layers, int experts, int min_count, int top_n,
                                               uint64_t seed, int bootstrap = 0,
                                               double ci_level = 0.95);

}  // namespace moe
