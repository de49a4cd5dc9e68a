#pragma once
// The MPI layer's few primitives (docs/distributed.md), over MPI_COMM_WORLD. Built only with
// MOESCOPE_MPI; core/ and the rest of analysis/ know nothing of MPI. Every MPI call is made from
// the thread that created the session (MPI_THREAD_FUNNELED): the trace writer's thread touches
// only HDF5.
#include <cstdint>
#include <string>
#include <vector>

namespace moe::distributed {

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

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace moe::distributed
