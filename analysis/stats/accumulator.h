#pragma once
// Streaming, mergeable routing statistics (docs/stats-format.md; docs/routing-metrics.md §2 and §4,
// item 3). Tokens arrive one document at a time, in any number of passes or shards; memory is
// fixed by the shape and options, never by the number of tokens:
//   * per-domain sums (sums_layout.h) for load, importance, first choice, repetition (§2.8),
//     router entropy, top-k mass, margin and z-loss (§2.3, from sampled logits);
//   * B bootstrap replicates of those sums: each document's partial sums are added to replicate
//     b with a Poisson(1) weight hashed from (seed, document, b) (§4, item 4);
//   * P permutation replicates: document d's counts go to the domain of document π_p(d), π_p a
//     hashed permutation of all documents, so domain sizes are kept (§2.4, "permutation test by
//     shuffling document-level domain labels");
//   * exact tables: co-activation within a layer (§2.7; all pairs, and the OLMoE rank-adjacent
//     pairs as an option), transitions between consecutive layers (§2.7), token id × expert for
//     input, next and predicted tokens (§2.5), executed-set frequencies (the shuffled vocabulary
//     baseline), entropy and margin histograms (§2.3).
// Every random draw is a hash of the global document index, so Merge of shards that number
// their documents globally equals one pass over everything (exactly, for counts).
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "analysis/stats/executed_set.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/sums_layout.h"
#include "analysis/stats/token_sink.h"

namespace moe {

struct StatsOptions {
  int bootstrap = 1000;   // B replicates for confidence intervals; 0 = none. 1000 keeps the
                          // Monte-Carlo error of an interval's half-width near 2%
  int permutations = -1;  // P domain-label permutations; 0 = no permutation test; -1 = enough
                          // for the family (PermutationsForFamily in multiplicity.h)
  double fdr = 0.05;      // Benjamini–Hochberg level of the discoveries reported
  uint64_t seed = 0;
  double ci_level = 0.95;
  int min_documents = 5;       // fewer documents in a row: the estimate without an interval
  bool rank_adjacent = false;  // also count OLMoE's rank-adjacent co-activation pairs (§2.7)
  bool vocabulary = true;      // token id × expert tables (needs shape.vocab > 0)
  int vocab_min_count = 10;    // OLMoE's N_x >= 10 filter (§2.5)
  int top_tokens = 10;         // tokens listed per expert
  int entropy_bins = 20;       // quantile bins of the router entropy deficit (histogram.h)
  int margin_bins = 20;        // quantile bins of the logit margin
  // With the tables, the predicted-token one too (needs traces that record /tokens/predicted;
  // AccumulateTraces turns it off otherwise).
  bool vocab_predicted = true;
};

// Permutations are memory [P, M, 1 + 2·L·E] doubles; "enough for the family" stops at this.
inline constexpr size_t kPermutationBudgetBytes = size_t{512} << 20;

// `options` with the permutation count settled for `shape` (auto: enough that a single cell
// of the specialization family can be a Benjamini–Hochberg discovery at options.fdr, at least
// 200, within kPermutationBudgetBytes). Throws Error on counts or levels out of range.
StatsOptions ResolveStatsOptions(const StatsShape& shape, const StatsOptions& options);

class RoutingAccumulator : public TokenSink {
 public:
  // `doc_domains`: the domain of every document of the whole run by global index (the labels the
  // permutation test shuffles); may be empty when options.permutations is 0.
  RoutingAccumulator(const StatsShape& shape, const StatsOptions& options,
                     std::vector<int16_t> doc_domains);

  // Documents are fed token by token; `global_doc` numbers documents over the whole run.
  void BeginDocument(int64_t global_doc, int domain) override;
  // One token: ids and weights [L, kmax] (descending weight, -1 pads); logits [L, E] or null
  // when the token has none recorded; `predicted` the model's top-1 next token, -1 for none.
  void AddToken(int32_t token_id, const int16_t* ids, const float* weights, int kmax,
                const float* logits, int32_t predicted = -1) override;
  void EndDocument() override;

  // Adds another accumulator of the same shape, options and document labels.
  void Merge(const RoutingAccumulator& other);

  // For reductions across processes (analysis/distributed/): calls `f` on every additive table
  // Merge adds (std::vector of double, int64_t or uint32_t), always in the same order. The
  // executed-set counts (maps) and the document and token counts are reduced separately.
  template <typename F>
  void ForEachTable(F&& f) {
    f(sums_), f(bootstrap_), f(permutation_), f(coactivation_), f(adjacent_), f(transitions_);
    f(vocab_input_), f(vocab_next_), f(input_count_), f(next_count_), f(vocab_predicted_);
    f(predicted_count_), f(entropy_hist_), f(margin_hist_);
  }
  std::vector<ExecutedSetCounts>& mutable_set_counts() { return sets_; }
  void SetCounts(int64_t documents, int64_t tokens) {
    documents_ = documents;
    tokens_ = tokens;
  }

  const StatsShape& shape() const { return shape_; }
  const StatsOptions& options() const { return options_; }
  const SliceLayout& layout() const { return layout_; }
  int64_t documents() const { return documents_; }
  int64_t tokens() const { return tokens_; }

  // Domain slices [M, S]; bootstrap [B, M, S]; permutation [P, M, S].
  std::span<const double> Slice(int domain) const;
  std::span<const double> BootstrapSlice(int replicate, int domain) const;
  std::span<const double> PermutationSlice(int replicate, int domain) const;

  // [M, L, E, E]: tokens whose set at l holds both i and j (i != j); the diagonal holds c_{l,i}.
  const std::vector<int64_t>& coactivation() const { return coactivation_; }
  const std::vector<int64_t>& coactivation_adjacent() const { return adjacent_; }  // or empty
  // [M, L-1, E, E]: tokens with i in S_l and j in S_{l+1}.
  const std::vector<int64_t>& transitions() const { return transitions_; }
  // [L, V, E] counts and [V] occurrences of input tokens / of next tokens (the token that
  // follows in the same document); empty without vocabulary tables.
  const std::vector<uint32_t>& vocab_input() const { return vocab_input_; }
  const std::vector<uint32_t>& vocab_next() const { return vocab_next_; }
  const std::vector<int64_t>& input_occurrences() const { return input_count_; }
  const std::vector<int64_t>& next_occurrences() const { return next_count_; }
  // [L, V, E] and [V]: the executed sets of the tokens whose top-1 prediction is x (the
  // predicted-token counterpart of vocab_next); empty without vocabulary tables or without
  // options.vocab_predicted.
  const std::vector<uint32_t>& vocab_predicted() const { return vocab_predicted_; }
  const std::vector<int64_t>& predicted_occurrences() const { return predicted_count_; }
  // Per layer: executed set -> tokens (empty when E > kMaxSetExperts).
  const std::vector<ExecutedSetCounts>& set_counts() const { return sets_; }
  // [M, L, grid size] counts on the fine grids of histogram.h (kEntropyDeficitGrid of
  // 1 - H / log E, kMarginGrid)
  const std::vector<int64_t>& entropy_histogram() const { return entropy_hist_; }
  const std::vector<int64_t>& margin_histogram() const { return margin_hist_; }

 private:
  void Add(size_t index, double value);
  void Layers(int32_t token_id, int32_t predicted, const int16_t* ids, const float* weights,
              int kmax);
  void Logits(const float* logits);
  void AddDocumentBaselines();  // the per-document shuffle expectations of the open document
  size_t Table(int domain, int layer) const;  // offset of an [E, E] block of coactivation_

  StatsShape shape_;
  StatsOptions options_;
  SliceLayout layout_;
  std::vector<int16_t> doc_domains_;
  std::vector<HashPermutation> permutations_;  // [P] over all documents
  size_t slice_size_;
  int64_t documents_ = 0, tokens_ = 0;

  std::vector<double> sums_;         // [M, S]
  std::vector<double> bootstrap_;    // [B, M, S]
  std::vector<double> permutation_;  // [P, M, layout_.permutation_size()]

  std::vector<int64_t> coactivation_, adjacent_, transitions_;
  std::vector<uint32_t> vocab_input_, vocab_next_, vocab_predicted_;
  std::vector<int64_t> input_count_, next_count_, predicted_count_;
  std::vector<ExecutedSetCounts> sets_;
  std::vector<int64_t> entropy_hist_, margin_hist_;

  // The open document.
  bool open_ = false;
  int64_t doc_ = -1;
  int domain_ = 0;
  std::vector<double> partial_;  // [S]
  std::vector<size_t> touched_;  // indices of partial_ that may be non-zero
  std::vector<uint8_t> is_touched_;
  bool has_previous_ = false;
  std::vector<int16_t> previous_;      // [L, K] the previous token's selected experts, -1 pads
  std::vector<int16_t> current_;       // [L, K]
  int64_t position_ = 0;               // tokens of the open document so far
  std::vector<int16_t> history_;       // [kMaxRepeatDistance, L] first choices, a ring by position
  std::vector<ExecutedSet> doc_sets_;  // [tokens of the open document, L] executed sets
  std::vector<double> probabilities_;  // [E] scratch
  std::vector<float> sorted_;          // [E] scratch
};

}  // namespace moe
