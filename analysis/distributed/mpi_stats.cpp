#include "analysis/distributed/mpi_stats.h"

#include <cstring>
#include <ostream>

#include "analysis/common/sha256.h"
#include "analysis/distributed/shard_plan.h"
#include "analysis/stats/token_controlled.h"
#include "analysis/stats/trace_scan.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"

namespace moe::distributed {
namespace {

const char* const kFailed = "failed (its error is above); no statistics were written";

// Executed-set counts: every rank's maps, added in rank order.
void ReduceSetCounts(const MpiSession& mpi, std::vector<ExecutedSetCounts>& sets) {
  constexpr size_t kSetBytes = sizeof(ExecutedSet::words), kRecord = kSetBytes + sizeof(int64_t);
  for (auto& layer : sets) {
    std::string mine;
    for (const auto& [set, count] : layer) {
      mine.append(reinterpret_cast<const char*>(set.words.data()), kSetBytes);
      mine.append(reinterpret_cast<const char*>(&count), sizeof(count));
    }
    layer.clear();
    for (const std::string& bytes : mpi.AllGather(mine))
      for (size_t at = 0; at + kRecord <= bytes.size(); at += kRecord) {
        ExecutedSet set;
        int64_t count;
        std::memcpy(set.words.data(), bytes.data() + at, kSetBytes);
        std::memcpy(&count, bytes.data() + at + kSetBytes, sizeof(count));
        layer[set] += count;
      }
  }
}

}  // namespace

int RunDistributedStats(const MpiSession& mpi, StatsRunOptions o, const std::string& command_line,
                        std::ostream& err) {
  const int rank = mpi.rank(), ranks = mpi.size();
  bool last_collective_done = false;  // no collective step is left (the rest is rank 0's output)
  o.write_output = rank == 0;
  if (rank != 0) o.progress = false;
  o.shard = [&](const TraceSetInfo& set, TraceStatsRun& run) {
    // Start-up check: the same command over the same traces (as far as InspectTraces saw them).
    Sha256 sha;
    sha.Update(command_line + '\0');
    for (size_t i = 0; i < set.paths.size(); ++i)
      sha.Update(set.paths[i] + '\0' + std::to_string(set.trace_documents[i]) + ' ' +
                 std::to_string(set.trace_tokens[i]) + '\0');
    mpi.CheckSameRun(true, sha.HexDigest(), kFailed);
    std::vector<int64_t> tokens;
    for (size_t i = 0; i < set.paths.size(); ++i) {
      const TraceReader reader(set.paths[i]);
      const auto off = reader.doc_offsets();
      for (int64_t d = 0; d < set.trace_documents[i]; ++d)
        tokens.push_back(off[static_cast<size_t>(d) + 1] - off[static_cast<size_t>(d)]);
    }
    const auto [first, end] = PlanShards(tokens, ranks)[static_cast<size_t>(rank)];
    run.first_document = first;
    run.end_document = end;
    run.reduce_first = [&mpi, &last_collective_done](RoutingAccumulator& acc) {
      mpi.CheckSameRun(true, "first pass", kFailed);
      acc.ForEachTable([&](auto& table) { mpi.SumAll(table); });
      ReduceSetCounts(mpi, acc.mutable_set_counts());
      std::vector<int64_t> counts = {acc.documents(), acc.tokens()};
      mpi.SumAll(counts);
      acc.SetCounts(counts[0], counts[1]);
      last_collective_done = acc.vocab_input().empty();  // no second pass follows
    };
    run.reduce_second = [&mpi, &last_collective_done](TokenControlledPass& pass) {
      mpi.CheckSameRun(true, "second pass", kFailed);
      std::vector<ClusterRatio>& sums = pass.mutable_sums();
      std::vector<double> values;
      std::vector<int64_t> groups;
      for (const ClusterRatio& c : sums) {
        values.insert(values.end(), {c.a, c.n, c.aa, c.an, c.nn});
        groups.push_back(c.groups);
      }
      mpi.SumAll(values);
      mpi.SumAll(groups);
      for (size_t i = 0; i < sums.size(); ++i) {
        sums[i] = {values[5 * i],     values[5 * i + 1], values[5 * i + 2],
                   values[5 * i + 3], values[5 * i + 4], groups[i]};
      }
      last_collective_done = true;
    };
  };
  try {
    const StatsSummary summary = RunStats(o);
    if (rank == 0) {
      err << FormatStatsSummary(summary) << " (on " << ranks << " ranks)" << std::endl;
      // Every rank gives the reductions vectors of the same sizes: rank 0's count is each one's.
      err << FormatTraffic({mpi.traffic()}) << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    const std::string message = e.what();
    if (message.rfind("mpirun:", 0) == 0) {
      // A collective check failed on every rank alike; rank 0 says why.
      if (rank == 0) err << "moescope: error: " << message << std::endl;
      return 1;
    }
    err << "moescope: error: " << (ranks > 1 ? "rank " + std::to_string(rank) + ": " : "")
        << message << std::endl;
    // Meet the others at their next check, so that they stop too. A failure after the last
    // collective step (rank 0 writing the output) needs none.
    if (!last_collective_done) {
      try {
        mpi.CheckSameRun(false, "", kFailed);
      } catch (const Error&) {
      }
    }
    return 1;
  }
}

}  // namespace moe::distributed
