#pragma once
// `mpirun -np N moescope ablate ...` (docs/distributed.md). Every rank opens the model, builds the
// sweep and reads the corpus; the ranks check they run the same command on the same model,
// corpus and policies. The work unit is one document with every policy of the current group run
// on it (the baseline residuals of its windows computed once, each policy resumed from its first
// changed layer: RunAblationDocument). Rank 0 hands out document indices on request (a dynamic
// queue), works on documents itself between requests, gathers every document's part
// (AblationGroupAssembly) and alone writes the one results file through the serial sweep's
// writer (RunPreparedAblation): each group of policies is committed when its last document
// arrives, and --resume skips the policies the file holds.
#include <atomic>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "analysis/ablation/ablation.h"
#include "analysis/distributed/mpi_session.h"

namespace moe::distributed {

// What every rank opens before the start-up check: the model and the sweep's policies.
struct AblationJob {
  LoadedModel model;
  std::vector<AblationPolicy> policies;
};

// Returns the process's exit code: 0, 1 (an error on some rank, reported by rank 0, which alone
// exits 1; the groups already committed stay in the file) or 130 (stopped by a signal; --resume
// continues). Rank 0 prints the results table to `out`; the summary, the communication line
// and errors go to `err`.
int RunDistributedAblation(const MpiSession& mpi, const std::function<AblationJob()>& open,
                           AblationOptions options, const std::string& command_line,
                           const std::atomic<bool>* stop, bool terminal, std::ostream& out,
                           std::ostream& err);

}  // namespace moe::distributed
