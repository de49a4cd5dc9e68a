#pragma once
// `mpirun -np N moescope stats TRACE... -o DIR` (docs/distributed.md): every rank inspects the
// traces, the ranks check they were given the same command, and each accumulates the documents
// of its contiguous, token-balanced share of the global document numbering (PlanShards) into
// the mergeable sums of RoutingAccumulator (every random draw hashes the global document index,
// so the bootstrap and permutation draws are those of one process); the sums are added with MPI
// reductions after each pass, and rank 0 writes DIR.
#include <iosfwd>
#include <string>

#include "analysis/distributed/mpi_session.h"
#include "analysis/stats/stats_job.h"

namespace moe::distributed {

// Returns the exit code (0 or 1); messages go to `err` (rank 0's summary, each rank's own error).
int RunDistributedStats(const MpiSession& mpi, StatsRunOptions options,
                        const std::string& command_line, std::ostream& err);

}  // namespace moe::distributed
