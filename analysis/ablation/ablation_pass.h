#pragma once
// The in-memory ablation pass: runs the model over a corpus under routing policies and measures
// what breaks against the unmodified model (docs/routing-metrics.md §2.9): ΔNLL, KL from the
// baseline next-token distribution and top-1 agreement, per document, summarized per domain with
// bootstrap intervals over documents (ablation_estimates.h). Nothing touches the filesystem:
// `moescope ablate` (ablation.h) writes what this returns to a results file, the app shows it.
//
// Policies run in groups: each pass over the corpus computes the baseline of a batch once, keeps
// the residual stream entering every layer a policy of the group first changes, and runs each
// policy from there (MoeModel::ForwardFrom), so layers below the first changed layer are not
// recomputed. Windows and scored tokens are those of `moescope trace` and `moescope score`
// (run/window_runner.h, run/next_token.h).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_diff.h"
#include "analysis/ablation/ablation_policies.h"
#include "analysis/ablation/ablation_result.h"
#include "analysis/corpus/corpus.h"
#include "analysis/run/trace_windows.h"
#include "core/moe_model.h"

namespace moe {

// The scored tokens of a corpus: every token with a next token in its document, in corpus
// order. T = doc_offset[D].
struct ScoredTokens {
  std::vector<std::string> domains;     // [M]
  std::vector<int16_t> doc_domain;      // [D]
  std::vector<std::string> doc_source;  // [D]
  std::vector<int64_t> doc_offset;      // [D + 1] scored-token rows of each document
  std::vector<int32_t> token_doc, token_position, token_id, token_target;  // [T]

  static ScoredTokens Of(const Corpus& corpus);
  int64_t count() const { return doc_offset.empty() ? 0 : doc_offset.back(); }
};

struct AblationPassOptions {
  WindowRule windows;   // valid for the model's context (WindowRule::Validate)
  int batch_size = 8;   // windows per forward pass
  int group_size = 16;  // policies per pass over the corpus
  int bootstrap = 200;  // replicates of the intervals (0: no intervals)
  uint64_t seed = 0;    // of the bootstrap weights
  double ci_level = 0.95;
  bool token_values = true;  // per-token ΔNLL, KL and agreement in the results
  // Token-level differences (ablation_diff.h: predictions whose top-1 changed, routing moves per
  // layer); costs a routing recorder on every forward pass.
  bool diff = false;
  size_t max_changes = 10000;  // changed predictions kept per policy, the largest |ΔNLL|
  bool reuse_residual = true;  // false: every policy runs the whole model (for checks)
  const std::atomic<bool>* stop = nullptr;  // set: the pass ends after the current batch
  // After each batch: predictions scored so far and in all, on the running thread.
  std::function<void(int64_t done, int64_t total)> on_progress;
  // As each policy finishes (groups finish together), with the baseline NLL of every scored
  // token [T]: lets a caller commit results while the pass goes on.
  std::function<void(const AblationResult& result, const std::vector<float>& base_nll)> on_result;
};

struct AblationPassResult {
  std::vector<AblationResult> results;  // the policies that finished, in the order given
  std::vector<AblationDiff> diffs;      // with options.diff: one per finished policy
  std::vector<float> base_nll;          // [T] baseline NLL of every scored token
  bool interrupted = false;             // stopped before every policy finished
};

// Throws Error naming the option or policy at fault (a policy is validated here, once). The model
// must be a MoE with an LM head; `tokens` must be ScoredTokens::Of(corpus).
AblationPassResult RunAblationPass(const MoeModel& model, const Corpus& corpus,
                                   const ScoredTokens& tokens,
                                   const std::vector<AblationPolicy>& policies,
                                   const AblationPassOptions& options);

// One document's part of a group of policies, the work unit of a distributed sweep
// (analysis/distributed/mpi_ablate.h): exactly what RunAblationPass gathers for the document,
// so parts assembled from every document give its results bit for bit (with batch size 1; with
// larger batches a document's windows share batches only with each other).
struct AblationDocumentPart {
  int64_t doc = 0;
  bool complete = true;         // false: options.stop ended it early (the rest is partial)
  std::vector<float> base_nll;  // [n] the document's scored tokens
  std::vector<double>
      base_experts;              // [2L] baseline: experts executed, then tokens routed, per layer
  std::vector<double> sums;      // [P, 6] the per-document sums (ablation_estimates.h)
  std::vector<double> experts;   // [P, 2L] as base_experts, under each policy
  std::vector<float> delta, kl;  // [P, n] per-token values (empty without token values)
  std::vector<int8_t> agree;     // [P, n]
};

// The windows of a corpus (PlanWindows) and, per document, its windows in the order a
// whole-corpus pass runs them (longest first, stable): planned once for many documents.
struct AblationWindows {
  std::vector<TraceWindow> windows;
  std::vector<std::vector<size_t>> of_document;  // [D]
  static AblationWindows Plan(const Corpus& corpus, const WindowRule& rule);
};

// Runs `group` over the windows of document `doc` (the baseline once, each policy from its first
// changed layer). options.on_progress gets the rows scored after each policy as `done`;
// options.stop ends it after the current batch.
AblationDocumentPart RunAblationDocument(const MoeModel& model, const Corpus& corpus,
                                         const ScoredTokens& tokens, const AblationWindows& windows,
                                         std::span<const AblationPolicy> group, int64_t doc,
                                         const AblationPassOptions& options);

// The results of a group from every document's part, added in any order: what RunAblationPass
// returns for the group (estimates, token values, experts per layer).
class AblationGroupAssembly {
 public:
  AblationGroupAssembly(const MoeModel& model, const ScoredTokens& tokens,
                        std::span<const AblationPolicy> group, const AblationPassOptions& options);
  ~AblationGroupAssembly();
  // Throws Error when the part does not fit the group or its document was added before.
  void Add(const AblationDocumentPart& part);
  int64_t documents() const { return documents_; }
  // Every document must have been added; `base_nll` [T] is set.
  std::vector<AblationResult> Finish(std::vector<float>& base_nll);

 private:
  struct State;
  const ScoredTokens& tokens_;
  AblationPassOptions options_;
  std::unique_ptr<State> state_;
  int layers_ = 0;
  int64_t documents_ = 0;
  std::vector<bool> added_;
};

}  // namespace moe
