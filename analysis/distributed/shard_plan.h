#pragma once
// The plain (MPI-free) part of sharded runs (docs/distributed.md): which documents each rank
// traces, where its shard goes, and whether this process was started by an MPI launcher. The MPI
// layer (mpi_*.h, only in builds with MOESCOPE_MPI) and the CLI use these; so do the tests.
#include <cstdint>
#include <filesystem>
#include <span>
#include <utility>
#include <vector>

namespace moe::distributed {

// [begin, end) document ranges, one per rank, contiguous and in corpus order (so the shards
// concatenated in rank order are the corpus in order), balanced by token count: rank r's range
// ends at the document boundary nearest to (r + 1) / ranks of the corpus's tokens. Depends only
// on the token counts and the number of ranks. A rank may get no documents (more ranks than
// documents).
std::vector<std::pair<int64_t, int64_t>> PlanShards(std::span<const int64_t> document_tokens,
                                                    int ranks);

// The shard of rank `rank` next to `output`: "out.h5" -> "out.rank-0003.h5".
std::filesystem::path ShardPath(const std::filesystem::path& output, int rank);

// The number of processes an MPI launcher started this one among (mpirun / mpiexec of Open MPI:
// OMPI_COMM_WORLD_SIZE; MPICH's Hydra and Slurm's PMI: PMI_SIZE; PMIx launchers such as
// `srun --mpi=pmix`: PMIX_SIZE, else 1 when PMIX_RANK is set); 0 when no launcher started it.
// The program initializes MPI only when this is non-zero: a plain `moescope` run never touches
// MPI (no singleton start-up, no messages, nothing to fail).
int LauncherWorldSize();

}  // namespace moe::distributed
