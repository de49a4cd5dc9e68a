#include "analysis/distributed/mpi_session.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

#include "core/error.h"

namespace moe::distributed {
namespace {

// Large vectors go in pieces of at most this many elements (MPI counts are int).
constexpr size_t kPiece = size_t{1} << 28;

template <typename T>
void SumInPieces(std::vector<T>& values, MPI_Datatype type, MpiTraffic& traffic) {
  const int64_t bytes = static_cast<int64_t>(values.size() * sizeof(T));
  traffic.messages_sent += 1;
  traffic.bytes_sent += bytes;
  traffic.messages_received += 1;
  traffic.bytes_received += bytes;
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
  CountSent(kBytes + 1);
  CountReceived(static_cast<int64_t>(all.size()));
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
  SumInPieces(v, MPI_DOUBLE, traffic_);
}
void MpiSession::SumAll(std::vector<int64_t>& v) const {
  SumInPieces(v, MPI_INT64_T, traffic_);
}
void MpiSession::SumAll(std::vector<uint32_t>& v) const {
  SumInPieces(v, MPI_UINT32_T, traffic_);
}

void MpiSession::Broadcast(std::string& bytes) const {
  uint64_t n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (n > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    Fail("mpirun", "a broadcast message is larger than 2 GiB");
  bytes.resize(n);
  if (rank_ == 0)
    CountSent(static_cast<int64_t>(n));
  else
    CountReceived(static_cast<int64_t>(n));
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
  CountSent(n);
  CountReceived(total);
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

void MpiSession::Send(int to, int tag, const std::string& bytes) const {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    Fail("mpirun", "a message is larger than 2 GiB");
  CountSent(static_cast<int64_t>(bytes.size()));
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD);
}

bool MpiSession::Probe(int& source, int& tag, bool wait) const {
  MPI_Status status;
  int flag = 0;
  for (;;) {
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
    if (flag || !wait) break;
    // Polls gently: a blocking MPI_Probe spins a core, which ranks sharing cores cannot spare.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!flag) return false;
  source = status.MPI_SOURCE;
  tag = status.MPI_TAG;
  return true;
}

std::string MpiSession::Receive(int source, int tag) const {
  MPI_Status status;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &status);
  int n = 0;
  MPI_Get_count(&status, MPI_CHAR, &n);
  std::string bytes(static_cast<size_t>(n), '\0');
  MPI_Recv(bytes.data(), n, MPI_CHAR, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  CountReceived(n);
  return bytes;
}

void MpiSession::CountSent(int64_t bytes) const {
  traffic_.messages_sent += 1;
  traffic_.bytes_sent += bytes;
}

void MpiSession::CountReceived(int64_t bytes) const {
  traffic_.messages_received += 1;
  traffic_.bytes_received += bytes;
}

std::vector<MpiTraffic> MpiSession::GatherTraffic() const {
  std::vector<MpiTraffic> all(static_cast<size_t>(size_));
  static_assert(sizeof(MpiTraffic) == 4 * sizeof(int64_t));
  MPI_Allgather(&traffic_, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T, MPI_COMM_WORLD);
  return all;
}

std::string FormatTraffic(const std::vector<MpiTraffic>& per_rank) {
  auto bytes = [](double b) {
    char text[32];
    if (b < 1e3)
      std::snprintf(text, sizeof(text), "%.0f B", b);
    else if (b < 1e6)
      std::snprintf(text, sizeof(text), "%.1f kB", b / 1e3);
    else if (b < 1e9)
      std::snprintf(text, sizeof(text), "%.1f MB", b / 1e6);
    else
      std::snprintf(text, sizeof(text), "%.2f GB", b / 1e9);
    return std::string(text);
  };
  auto messages = [](double n) {
    char text[48];
    std::snprintf(text, sizeof(text), "%.0f message%s", n, n == 1 ? "" : "s");
    return std::string(text);
  };
  if (per_rank.empty()) return "";
  const MpiTraffic& zero = per_rank[0];
  std::string out = "communication: rank 0 sent " + bytes(static_cast<double>(zero.bytes_sent)) +
                    " in " + messages(static_cast<double>(zero.messages_sent)) + ", received " +
                    bytes(static_cast<double>(zero.bytes_received)) + " in " +
                    messages(static_cast<double>(zero.messages_received));
  if (per_rank.size() < 2) return out;
  double sent = 0, received = 0, messages_sent = 0, max_sent = 0, max_received = 0;
  for (size_t r = 1; r < per_rank.size(); ++r) {
    sent += static_cast<double>(per_rank[r].bytes_sent);
    received += static_cast<double>(per_rank[r].bytes_received);
    messages_sent += static_cast<double>(per_rank[r].messages_sent);
    max_sent = std::max(max_sent, static_cast<double>(per_rank[r].bytes_sent));
    max_received = std::max(max_received, static_cast<double>(per_rank[r].bytes_received));
  }
  const double n = static_cast<double>(per_rank.size() - 1);
  return out + "; other ranks each sent " + bytes(sent / n) + " in " + messages(messages_sent / n) +
         " and received " + bytes(received / n) + " on average (largest " + bytes(max_sent) +
         " sent, " + bytes(max_received) + " received)";
}

}  // namespace moe::distributed
