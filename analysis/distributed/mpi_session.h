#pragma once
// The MPI layer's few primitives (docs/distributed.md), over MPI_COMM_WORLD. Built only with
// MOESCOPE_MPI; core/ and the rest of analysis/ know nothing of MPI. Every MPI call is made from
// the thread that created the session (MPI_THREAD_FUNNELED): the trace writer's thread touches
// only HDF5.
#include <cstdint>
#include <string>
#include <vector>

namespace moe::distributed {

// What this rank handed to MPI and got back: payload bytes of the library's calls (not the
// transport's framing or a collective's internal relays); a reduction counts its vector once
// each way, a broadcast the message on every rank.
struct MpiTraffic {
  int64_t messages_sent = 0, bytes_sent = 0, messages_received = 0, bytes_received = 0;
};

// One line for the end of a run (rank 0): rank 0's traffic, the other ranks' mean and largest.
std::string FormatTraffic(const std::vector<MpiTraffic>& per_rank);

class MpiSession {
 public:
  // MPI_Init_thread; call only when LauncherWorldSize() (shard_plan.h) says a launcher started
  // this process.
  MpiSession();
  // MPI_Finalize.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Collective start-up check. Every rank passes whether its set-up succeeded and a fingerprint
  // of its run (arguments, model hashes, corpus); returns normally on every rank only when all
  // succeeded and all fingerprints equal rank 0's. Otherwise every rank throws Error: naming the
  // first rank whose fingerprint differs ("started with different arguments, model or corpus"),
  // or saying which ranks failed to start (`ok` false; those ranks report their own error).
  // `failure` completes "rank R ..." for ranks that were not ok.
  void CheckSameRun(bool ok, const std::string& fingerprint,
                    const std::string& failure =
                        "could not start (its error is above); no rank "
                        "traced") const;

  // Element-wise sums over all ranks, the result on every rank (MPI_Allreduce in place).
  void SumAll(std::vector<double>& values) const;
  void SumAll(std::vector<int64_t>& values) const;
  void SumAll(std::vector<uint32_t>& values) const;
  // Rank 0's bytes on every rank.
  void Broadcast(std::string& bytes) const;
  // Every rank's bytes, in rank order, on every rank.
  std::vector<std::string> AllGather(const std::string& bytes) const;
  void Barrier() const;

  // Point-to-point messages of bytes, counted in traffic().
  void Send(int to, int tag, const std::string& bytes) const;
  // A message waiting from any rank: true with its source and tag; with `wait`, blocks for one.
  bool Probe(int& source, int& tag, bool wait) const;
  std::string Receive(int source, int tag) const;

  // Messages sent outside these calls (mpi_trace.cpp's progress messages) are counted here.
  void CountSent(int64_t bytes) const;
  void CountReceived(int64_t bytes) const;
  const MpiTraffic& traffic() const { return traffic_; }
  // Collective: every rank's traffic (this exchange not counted), in rank order.
  std::vector<MpiTraffic> GatherTraffic() const;

 private:
  int rank_ = 0, size_ = 1;
  mutable MpiTraffic traffic_;
};

}  // namespace moe::distributed
