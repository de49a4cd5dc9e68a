#pragma once
// `moescope ablate`: the ablation pass (ablation_pass.h) over a corpus or a trace's documents,
// with its results committed to an HDF5 file (docs/ablation-format.md, ablation_file.h) as each
// policy finishes, plus a tidy CSV beside it. Finished policies are kept with a completed flag;
// `resume` skips them. `pass.stop` (set from a signal handler) ends the run after the current
// batch. The corpus is read and windowed as `moescope trace` does (corpus/corpus.h,
// run/trace_windows.h).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_diff.h"
#include "analysis/ablation/ablation_file.h"
#include "analysis/ablation/ablation_pass.h"
#include "analysis/ablation/ablation_policies.h"
#include "analysis/ablation/ablation_result.h"
#include "analysis/run/trace_header.h"
#include "core/model_loader.h"

namespace moe {

struct AblationOptions {
  TraceRunSettings run;          // corpus files, domains, windows (record_logits is ignored)
  std::filesystem::path trace;   // when set: the documents of this trace instead of corpus files
  std::filesystem::path output;  // results file (HDF5); the CSV goes to <output>.csv
  // Batch and group sizes, bootstrap, diff, stop and progress callback; `windows` and
  // `on_result` are set from `run` and the results file.
  AblationPassOptions pass;
  bool resume = false;
  bool progress = false;  // progress bar on stderr
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
  std::vector<AblationDiff> diffs;      // with pass.diff: the policies this run finished
};

AblationSummary RunAblation(const LoadedModel& model, const std::vector<AblationPolicy>& policies,
                            const AblationOptions& options);

// What RunAblation prepares before sweeping: the corpus (read and windowed as `moescope trace`
// does) and the results file's header. A distributed sweep prepares it on every rank.
struct PreparedAblation {
  TraceRunSettings run;  // windows resolved for the model
  Corpus corpus;
  AblationHeader header;
};
PreparedAblation PrepareAblation(const LoadedModel& model, const AblationOptions& options);

// Runs the policies not yet in the results file (`pending`, in sweep order) with `pass`
// (windows, on_result and on_progress set); RunAblationPass by default.
using AblationPassRunner = std::function<AblationPassResult(
    const std::vector<AblationPolicy>& pending, const AblationPassOptions& pass)>;
// RunAblation over a prepared run, the pass made by `runner`: the results file, its lock and
// resume, and the CSV as RunAblation has them.
AblationSummary RunPreparedAblation(const std::vector<AblationPolicy>& policies,
                                    const AblationOptions& options,
                                    const PreparedAblation& prepared,
                                    const AblationPassRunner& runner);

// Writes the tidy CSV of a results file: policy, kind, layer, expert, r, k, control_of,
// first_layer, domain, metric, value, ci_low, ci_high, n.
void WriteAblationCsv(const std::filesystem::path& csv, const std::vector<std::string>& domains,
                      const std::vector<AblationResult>& results);

// A table of the results (overall ΔNLL, KL, agreement with intervals), one policy per line in
// sweep order (each top-r{r} followed by its random-r controls), then, when the sweep has random-r
// controls, top-r and its controls side by side with ΔNLL per domain.
std::string FormatAblationTable(const AblationSummary& summary);
std::string FormatAblationSummary(const AblationSummary& summary);

}  // namespace moe
