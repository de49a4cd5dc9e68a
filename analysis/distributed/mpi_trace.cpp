#include "analysis/distributed/mpi_trace.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "analysis/common/progress_bar.h"
#include "analysis/common/sha256.h"
#include "analysis/distributed/shard_plan.h"
#include "analysis/trace/trace_merge.h"
#include "core/error.h"

namespace moe::distributed {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kTagProgress = 71;  // int64[2]: shard tokens done, shard tokens in all
// text: "<status> <documents> <tokens> <traced> <traffic: 4 numbers>\n<message>"
constexpr int kTagDone = 72;

enum Status : int { kOk = 0, kInterrupted = 1, kFailed = 2 };

struct RankReport {
  bool done = false;
  int status = kOk;
  int64_t documents = 0, tokens = 0, traced = 0;  // traced: tokens run by this run
  std::string message;
  int64_t tokens_done = 0, tokens_total = 0;
  MpiTraffic traffic;  // the rank's messages, its final report included
};

std::string RunFingerprint(const std::string& command_line, const TraceHeader& h, int ranks) {
  Sha256 sha;
  for (const std::string* s :
       {&command_line, &h.model_config, &h.checkpoint_sha256, &h.tokenizer_sha256,
        &h.routing_policy, &h.windowing, &h.corpus_sha256})
    sha.Update(*s + '\0');
  sha.Update(std::to_string(h.record_logits) + " " + std::to_string(h.logit_sample_rate) + " " +
             std::to_string(ranks));
  return sha.HexDigest();
}

// Rank 0's view of the job: the other ranks' progress and final reports, through messages it
// polls for; the others send theirs.
class Progress {
 public:
  Progress(const MpiSession& mpi, bool terminal, std::ostream& err)
      : mpi_(mpi), terminal_(terminal), err_(err), reports_(static_cast<size_t>(mpi.size())) {}

  void SetTotals(int64_t documents, int64_t tokens) {
    if (mpi_.rank() != 0) return;
    total_tokens_ = tokens;
    total_documents_ = documents;
    bar_.emplace(terminal_, mpi_.size(), tokens);
    bar_->SetItemsName("ranks done");
    start_ = last_line_ = Clock::now();
  }

  // This rank's shard: tokens done (resumed included) out of its tokens.
  void Report(int64_t done, int64_t total) {
    RankReport& me = reports_[static_cast<size_t>(mpi_.rank())];
    me.tokens_done = done;
    me.tokens_total = total;
    if (mpi_.rank() == 0) {
      Poll();
      Draw();
      return;
    }
    if (pending_ != MPI_REQUEST_NULL) {
      int finished = 0;
      MPI_Test(&pending_, &finished, MPI_STATUS_IGNORE);
      if (!finished) return;
    }
    if (Clock::now() - last_send_ < std::chrono::milliseconds(250) && done < total) return;
    last_send_ = Clock::now();
    buffer_[0] = done;
    buffer_[1] = total;
    mpi_.CountSent(sizeof(buffer_));
    MPI_Isend(buffer_, 2, MPI_INT64_T, 0, kTagProgress, MPI_COMM_WORLD, &pending_);
  }

  // A rank other than 0 says how it ended.
  void SendDone(const RankReport& r) {
    if (pending_ != MPI_REQUEST_NULL) MPI_Wait(&pending_, MPI_STATUS_IGNORE);
    const MpiTraffic& t = mpi_.traffic();
    std::ostringstream text;
    text << r.status << " " << r.documents << " " << r.tokens << " " << r.traced << " "
         << t.messages_sent << " " << t.bytes_sent << " " << t.messages_received << " "
         << t.bytes_received << "\n"
         << r.message;
    const std::string s = text.str();
    mpi_.CountSent(static_cast<int64_t>(s.size()));
    MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, 0, kTagDone, MPI_COMM_WORLD);
  }

  // Rank 0: waits for every other rank's report, or for `stop`. False when stopped first.
  bool WaitForAll(const std::atomic<bool>* stop) {
    for (;;) {
      Poll();
      Draw();
      bool all = true;
      for (int r = 1; r < mpi_.size(); ++r) all = all && reports_[static_cast<size_t>(r)].done;
      if (all) return true;
      if (stop != nullptr && stop->load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  RankReport& report(int rank) { return reports_[static_cast<size_t>(rank)]; }
  void Clear() {
    if (bar_) bar_->Clear();
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  void Poll() {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
      if (!flag) return;
      RankReport& r = reports_[static_cast<size_t>(status.MPI_SOURCE)];
      if (status.MPI_TAG == kTagProgress) {
        int64_t v[2];
        MPI_Recv(v, 2, MPI_INT64_T, status.MPI_SOURCE, kTagProgress, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        mpi_.CountReceived(sizeof(v));
        r.tokens_done = v[0];
        r.tokens_total = v[1];
      } else if (status.MPI_TAG == kTagDone) {
        int n = 0;
        MPI_Get_count(&status, MPI_CHAR, &n);
        std::string s(static_cast<size_t>(n), '\0');
        MPI_Recv(s.data(), n, MPI_CHAR, status.MPI_SOURCE, kTagDone, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        mpi_.CountReceived(n);
        std::istringstream in(s);
        in >> r.status >> r.documents >> r.tokens >> r.traced >> r.traffic.messages_sent >>
            r.traffic.bytes_sent >> r.traffic.messages_received >> r.traffic.bytes_received;
        r.traffic.messages_sent += 1;  // the report itself
        r.traffic.bytes_sent += n;
        std::getline(in, r.message);  // rest of the first line
        std::getline(in, r.message, '\0');
        r.done = true;
        if (r.status == kOk) r.tokens_done = r.tokens_total = r.tokens;
      } else {
        Fail("mpirun", "internal error: unexpected message tag " + std::to_string(status.MPI_TAG));
      }
    }
  }

  void Draw() {
    if (!bar_) return;
    int64_t tokens = 0, done_ranks = 0;
    for (int r = 0; r < mpi_.size(); ++r) {
      tokens += reports_[static_cast<size_t>(r)].tokens_done;
      done_ranks += reports_[static_cast<size_t>(r)].done ? 1 : 0;
    }
    bar_->Update(done_ranks, tokens);
    // Under mpirun stderr is rarely a terminal: a plain line every 10 seconds instead.
    if (!terminal_ && Clock::now() - last_line_ >= std::chrono::seconds(10)) {
      last_line_ = Clock::now();
      char line[160];
      std::snprintf(line, sizeof(line),
                    "progress: %.1f%% of %s tokens (%lld documents) on %d ranks, %lld ranks done",
                    total_tokens_ > 0 ? 100.0 * static_cast<double>(tokens) / total_tokens_ : 100.0,
                    ShortCount(static_cast<double>(total_tokens_)).c_str(),
                    static_cast<long long>(total_documents_), mpi_.size(),
                    static_cast<long long>(done_ranks));
      err_ << line << std::endl;
    }
  }

  const MpiSession& mpi_;
  bool terminal_;
  std::ostream& err_;
  std::vector<RankReport> reports_;
  std::optional<ProgressBar> bar_;
  int64_t total_tokens_ = 0, total_documents_ = 0;
  Clock::time_point start_ = Clock::now(), last_line_ = Clock::now(), last_send_{};
  MPI_Request pending_ = MPI_REQUEST_NULL;
  int64_t buffer_[2] = {0, 0};
};

}  // namespace

int RunDistributedTrace(const MpiSession& mpi,
                        const std::function<TraceSummary(const TraceOptions&)>& trace,
                        TraceOptions o, const std::string& command_line,
                        const std::atomic<bool>* stop, bool terminal, std::ostream& err) {
  const int rank = mpi.rank(), ranks = mpi.size();
  const std::filesystem::path output = o.output;
  std::vector<std::filesystem::path> shards;
  for (int r = 0; r < ranks; ++r) shards.push_back(ShardPath(output, r));

  Progress progress(mpi, terminal, err);
  bool checked = false;  // the start-up check ran (successfully or not)
  MergeOptions whole;    // rank 0: the whole run's corpus attribute and domains
  o.output = shards[static_cast<size_t>(rank)];
  o.progress = false;
  o.stop = stop;
  o.select_documents = [&](const Corpus& corpus, const TraceHeader& header) {
    checked = true;
    mpi.CheckSameRun(true, RunFingerprint(command_line, header, ranks));
    std::vector<int64_t> tokens;
    for (const CorpusDocument& d : corpus.documents)
      tokens.push_back(static_cast<int64_t>(d.ids.size()));
    if (rank == 0) {
      whole.corpus = header.corpus;
      whole.domains = header.domains;
      progress.SetTotals(static_cast<int64_t>(corpus.documents.size()), corpus.tokens());
    }
    return PlanShards(tokens, ranks)[static_cast<size_t>(rank)];
  };
  o.on_progress = [&](int64_t done, int64_t total) { progress.Report(done, total); };

  RankReport mine;
  try {
    const TraceSummary s = trace(o);
    mine.status = s.interrupted ? kInterrupted : kOk;
    mine.documents = s.documents;
    mine.tokens = s.tokens;
    mine.traced = s.tokens - s.resumed_tokens;
  } catch (const std::exception& e) {
    if (!checked) {
      // Set-up failed here (model, corpus, flags): tell the others, then report our own error.
      err << "moescope: error: " << (ranks > 1 ? "rank " + std::to_string(rank) + ": " : "")
          << e.what() << std::endl;
      try {
        mpi.CheckSameRun(false, "");
      } catch (const Error&) {
      }
      return 1;
    }
    mine.status = kFailed;
    mine.message = e.what();
  }
  if (mine.status == kFailed && mine.message.rfind("mpirun:", 0) == 0) {
    // The start-up check failed on every rank alike: nothing was written anywhere.
    if (rank == 0) err << "moescope: error: " << mine.message << std::endl;
    return 1;
  }

  if (rank != 0) {
    progress.SendDone(mine);
    // Rank 0 reports the failure and ends with exit code 1. This rank ends with 0: Open MPI's
    // mpirun aborts the whole job when any rank exits non-zero, which would kill rank 0 before
    // it could report.
    return mine.status == kInterrupted ? 130 : 0;
  }
  RankReport& own = progress.report(0);
  own.done = true;
  own.status = mine.status;
  own.message = mine.message;
  own.documents = mine.documents;
  own.tokens = own.tokens_done = mine.tokens;
  own.traced = mine.traced;
  const bool all_reported = progress.WaitForAll(stop);
  progress.Clear();

  int failed = 0, interrupted = all_reported ? 0 : 1;
  int64_t documents = 0, tokens = 0, traced = 0;
  for (int r = 0; r < ranks; ++r) {
    const RankReport& rep = progress.report(r);
    if (!rep.done) continue;
    documents += rep.documents;
    tokens += rep.tokens;
    traced += rep.traced;
    if (rep.status == kFailed) {
      ++failed;
      err << "moescope: error: rank " << r << " (" << shards[static_cast<size_t>(r)].string()
          << "): " << rep.message << std::endl;
    } else if (rep.status == kInterrupted) {
      ++interrupted;
    }
  }
  if (failed > 0 || interrupted > 0) {
    err << (failed > 0 ? "stopped: " : "interrupted: ")
        << "each rank's finished documents are committed in its shard " << output.stem().string()
        << ".rank-*" << output.extension().string()
        << "; continue with the same mpirun command and --resume" << std::endl;
    return failed > 0 ? 1 : 130;
  }
  try {
    const MergeSummary merged = MergeTraces(shards, output, whole);
    const double seconds = progress.seconds();
    char rate[96];
    std::snprintf(rate, sizeof(rate), "%.1fs (%s tokens/s)", seconds,
                  ShortCount(seconds > 0 ? static_cast<double>(traced) / seconds : 0).c_str());
    err << "traced " << merged.documents << " documents, "
        << ShortCount(static_cast<double>(merged.tokens)) << " tokens on " << ranks
        << (ranks == 1 ? " rank" : " ranks") << " in " << rate << " -> " << output.string()
        << " (virtual datasets over " << output.stem().string() << ".rank-*"
        << output.extension().string() << ")" << std::endl;
    std::vector<MpiTraffic> traffic;
    for (int r = 0; r < ranks; ++r)
      traffic.push_back(r == 0 ? mpi.traffic() : progress.report(r).traffic);
    err << FormatTraffic(traffic) << std::endl;
  } catch (const std::exception& e) {
    err << "moescope: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace moe::distributed
