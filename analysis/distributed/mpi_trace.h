#pragma once
// `mpirun -np N moescope trace ...` (docs/distributed.md). Every rank reads the whole corpus,
// checks with the others that they run the same command on the same model and corpus, traces
// its contiguous, token-balanced share of the documents (PlanShards) into its own crash-safe
// shard OUT.rank-RRRR.h5 with the ordinary trace writer, and rank 0 then joins the shards into
// OUT.h5 as virtual datasets (trace_merge.h). --resume resumes every rank's shard.
#include <atomic>
#include <functional>
#include <iosfwd>
#include <string>

#include "analysis/distributed/mpi_session.h"
#include "analysis/run/trace_runner.h"

namespace moe::distributed {

// `trace` runs RunTrace with the options it is given (opening the model first); `options.output`
// is the final OUT.h5. `command_line` is compared between ranks. Messages go to `err`: rank 0
// reports progress, the summary and every rank's failure; other ranks report only an error of
// their own that happens before the start-up check. Returns the process's exit code: 0, 1 (an
// error on some rank -- reported by rank 0, which alone exits 1 -- the shards keep what they
// committed), 130 (stopped by a signal; --resume continues).
int RunDistributedTrace(const MpiSession& mpi,
                        const std::function<TraceSummary(const TraceOptions&)>& trace,
                        TraceOptions options, const std::string& command_line,
                        const std::atomic<bool>* stop, bool terminal, std::ostream& err);

}  // namespace moe::distributed
