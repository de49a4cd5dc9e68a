#pragma once
// `moescope ablate`: runs the model over a corpus under routing policies and measures what
// breaks against the unmodified model (routing-analysis.md §2.9): ΔNLL per domain and overall,
// KL from the baseline next-token distribution, top-1 agreement, each with a bootstrap
// confidence interval over documents, and per-token values, into an HDF5 file
// (docs/ablation-format.md) plus a tidy CSV beside it.
//
// The corpus is read and windowed as `moescope trace` does (corpus.h, trace_windows.h). Policies
// run in groups: each pass over the corpus computes the baseline of a batch once, keeps the
// residual stream entering every layer a policy of the group first changes, and runs each
// policy from there (LlamaMoeModel::ForwardFrom), so layers below the first changed layer are
// not recomputed. Finished policies are appended to the file with a completed flag; `resume`
// skips them. `stop` (set from a signal handler) ends the run after the current batch.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_diff.h"
#include "analysis/ablation/ablation_policies.h"
#include "analysis/ablation/ablation_result.h"
#include "analysis/run/trace_header.h"
#include "core/model_loader.h"

namespace moe {

struct AblationOptions {
  TraceRunSettings run;          // corpus files, domains, windows (record_logits is ignored)
  std::filesystem::path trace;   // when set: the documents of this trace instead of corpus files
  std::filesystem::path output;  // results file (HDF5); the CSV goes to <output>.csv
  int batch_size = 8;            // windows per forward pass
  int group_size = 16;           // policies per pass over the corpus
  int bootstrap = 200;
  uint64_t seed = 0;
  double ci_level = 0.95;
  bool token_values = true;  // per-token ΔNLL, KL and agreement in the file
  // Token-level differences of every policy this run finishes (ablation_diff.h: predictions
  // whose top-1 changed, routing moves per layer), in AblationSummary::diffs. Kept in memory,
  // not written to the results file; costs a routing recorder on every forward pass.
  bool diff = false;
  size_t max_changes = 10000;  // changed predictions kept per policy, the largest |ΔNLL|
  bool resume = false;
  bool progress = false;       // progress line on stderr
  bool reuse_residual = true;  // false: every policy runs the whole model (for checks)
  const std::atomic<bool>* stop = nullptr;
  // Called after each batch with the predictions scored so far and in all (for a GUI's progress
  // bar), on the running thread.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

struct AblationSummary {
  std::string output, csv;
  int policies = 0;                   // in the sweep
  int run = 0;                        // finished by this run
  int skipped = 0;                    // already in the file (resume)
  int64_t documents = 0, tokens = 0;  // scored next-token predictions per policy
  double seconds = 0;
  bool interrupted = false;
  std::vector<std::string> domains;
  std::vector<AblationResult> results;  // every finished policy in the file, in sweep order
  std::vector<AblationDiff> diffs;      // with options.diff: the policies this run finished
};

AblationSummary RunAblation(const LoadedModel& model, const std::vector<AblationPolicy>& policies,
                            const AblationOptions& options);

// Writes the tidy CSV of a results file: policy, kind, layer, expert, r, k, control_of,
// first_layer, domain, metric, value, ci_low, ci_high, n.
void WriteAblationCsv(const std::filesystem::path& csv, const std::vector<std::string>& domains,
                      const std::vector<AblationResult>& results);

// A table of the results (overall ΔNLL, KL, agreement with intervals), one policy per line.
std::string FormatAblationTable(const AblationSummary& summary);
std::string FormatAblationSummary(const AblationSummary& summary);

}  // namespace moe
