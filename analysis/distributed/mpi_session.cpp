#include "analysis/distributed/mpi_session.h"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace moe::distributed {
namespace {

// Large vectors go in pieces of at most this many elements (MPI counts are int).
constexpr size_t kPiece = size_t{1} << 28;

template <typename T>
void SumInPieces(std::vector<T>& values, MPI_Datatype type) {
  for (size_t at = 0; at < values.size(); at += kPiece) {
    const int n = static_cast<int>(std::min(kPiece, values.size() - at));
    MPI_Allreduce(MPI_IN_PLACE, values.data() + at, n, type, MPI_SUM, MPI_COMM_WORLD);
  }
}

}  // namespace

MpiSession::MpiSession() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  // Errors end the job by default; keep that (a rank that cannot talk to the others cannot
  // recover), but report them through the launcher rather than as exceptions.
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::CheckSameRun(bool ok, const std::string& fingerprint,
                              const std::string& failure) const {
  constexpr int kBytes = 64;
  char mine[kBytes + 1] = {};
  mine[0] = ok ? 1 : 0;
  std::memcpy(mine + 1, fingerprint.data(), std::min<size_t>(fingerprint.size(), kBytes));
  std::vector<char> all(static_cast<size_t>(size_) * (kBytes + 1));
  MPI_Allgather(mine, kBytes + 1, MPI_CHAR, all.data(), kBytes + 1, MPI_CHAR, MPI_COMM_WORLD);
  std::string failed;
  int differs = -1;
  for (int r = 0; r < size_; ++r) {
    const char* p = all.data() + static_cast<size_t>(r) * (kBytes + 1);
    if (p[0] == 0)
      failed += (failed.empty() ? "" : ", ") + std::to_string(r);
    else if (differs < 0 && all[0] == 1 && std::memcmp(p + 1, all.data() + 1, kBytes) != 0)
      differs = r;
  }
  if (!failed.empty()) Fail("mpirun", "rank " + failed + " " + failure);
  if (differs >= 0)
    Fail("mpirun", "rank " + std::to_string(differs) +
                       " was started with different arguments, model or corpus than rank 0 (the "
                       "run fingerprints differ); every rank must run the same command on the "
                       "same files");
}

void MpiSession::SumAll(std::vector<double>& v) const {
  SumInPieces(v, MPI_DOUBLE);
}
void MpiSession::SumAll(std::vector<int64_t>& v) const {
  SumInPieces(v, MPI_INT64_T);
}
void MpiSession::SumAll(std::vector<uint32_t>& v) const {
  SumInPieces(v, MPI_UINT32_T);
}

void MpiSession::Broadcast(std::string& bytes) const {
  uint64_t n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (n > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    Fail("mpirun", "a broadcast message is larger than 2 GiB");
  bytes.resize(n);
  MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
}

std::vector<std::string> MpiSession::AllGather(const std::string& bytes) const {
  int n = static_cast<int>(bytes.size());
  std::vector<int> sizes(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
  MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<size_t>(r)] = static_cast<int>(total);
    total += sizes[static_cast<size_t>(r)];
  }
  if (total > std::numeric_limits<int>::max()) Fail("mpirun", "gathered messages exceed 2 GiB");
  std::string all(static_cast<size_t>(total), '\0');
  MPI_Allgatherv(bytes.data(), n, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR,
                 MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r)
    out.push_back(all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                             static_cast<size_t>(sizes[static_cast<size_t>(r)])));
  return out;
}

void MpiSession::Barrier() const {
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace moe::distributed
