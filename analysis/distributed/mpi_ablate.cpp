#include "analysis/distributed/mpi_ablate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <ostream>
#include <utility>

#include "analysis/common/progress_bar.h"
#include "analysis/common/sha256.h"
#include "analysis/policy/policy_json.h"
#include "core/error.h"

namespace moe::distributed {
namespace {

using Clock = std::chrono::steady_clock;

// Workers to rank 0: every message but the first answers an assignment and asks for the next.
constexpr int kTagRequest = 81;  // empty: the first request
constexpr int kTagResult = 82;   // a packed AblationDocumentPart
constexpr int kTagFailed = 83;   // the error text
constexpr int kTagStopped = 84;  // empty: a signal stopped the document
// Rank 0 to workers, one reply per worker message.
constexpr int kTagAssign = 85;  // int64: document, then the group's indices into the sweep
constexpr int kTagStop = 86;    // empty: no more work

// Length-prefixed arrays of plain values in one message.
class Packer {
 public:
  template <typename T>
  void Put(const std::vector<T>& v) {
    const uint64_t n = v.size();
    bytes_.append(reinterpret_cast<const char*>(&n), sizeof(n));
    bytes_.append(reinterpret_cast<const char*>(v.data()), n * sizeof(T));
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Unpacker {
 public:
  explicit Unpacker(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  std::vector<T> Get() {
    uint64_t n = 0;
    Take(&n, sizeof(n));
    if (n > (bytes_.size() - at_) / sizeof(T)) Fail("mpirun", "internal error: a short message");
    std::vector<T> v(n);
    Take(v.data(), n * sizeof(T));
    return v;
  }

 private:
  void Take(void* to, size_t n) {
    if (n > bytes_.size() - at_) Fail("mpirun", "internal error: a short message");
    std::memcpy(to, bytes_.data() + at_, n);
    at_ += n;
  }
  const std::string& bytes_;
  size_t at_ = 0;
};

std::string Pack(const AblationDocumentPart& p) {
  Packer k;
  k.Put(std::vector<int64_t>{p.doc});
  k.Put(p.base_nll);
  k.Put(p.base_experts);
  k.Put(p.sums);
  k.Put(p.experts);
  k.Put(p.delta);
  k.Put(p.kl);
  k.Put(p.agree);
  return k.bytes();
}

AblationDocumentPart Unpack(const std::string& bytes) {
  Unpacker u(bytes);
  AblationDocumentPart p;
  const std::vector<int64_t> doc = u.Get<int64_t>();
  if (doc.size() != 1) Fail("mpirun", "internal error: a result without its document");
  p.doc = doc[0];
  p.base_nll = u.Get<float>();
  p.base_experts = u.Get<double>();
  p.sums = u.Get<double>();
  p.experts = u.Get<double>();
  p.delta = u.Get<float>();
  p.kl = u.Get<float>();
  p.agree = u.Get<int8_t>();
  return p;
}

std::string AsBytes(const std::vector<int64_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
}

std::string RunFingerprint(const std::string& command_line, const TraceAttributes& h,
                           const std::vector<AblationPolicy>& policies, int ranks) {
  Sha256 sha;
  for (const std::string* s : {&command_line, &h.model_config, &h.checkpoint_sha256,
                               &h.tokenizer_sha256, &h.windowing, &h.corpus_sha256})
    sha.Update(*s + '\0');
  for (const AblationPolicy& p : policies)
    sha.Update(p.name + '\0' + PolicyToJson(p.policy).dump() + '\0');
  sha.Update(std::to_string(ranks));
  return sha.HexDigest();
}

// A worker (rank > 0): asks rank 0 for documents and runs every policy of the group on each
// until told to stop. Returns 130 when a signal stopped it, else 0 (rank 0 reports failures).
int RunWorker(const MpiSession& mpi, const AblationJob& job, const PreparedAblation& prepared,
              AblationPassOptions pass) {
  pass.windows = prepared.run.windows;
  const AblationWindows windows = AblationWindows::Plan(prepared.corpus, pass.windows);
  mpi.Send(0, kTagRequest, "");
  std::vector<int64_t> indices;
  std::vector<AblationPolicy> group;
  for (;;) {
    int source = 0, tag = 0;
    mpi.Probe(source, tag, true);
    const std::string message = mpi.Receive(source, tag);
    if (tag == kTagStop) break;
    if (tag != kTagAssign || message.size() < sizeof(int64_t))
      Fail("mpirun", "internal error: unexpected message tag " + std::to_string(tag));
    std::vector<int64_t> words(message.size() / sizeof(int64_t));
    std::memcpy(words.data(), message.data(), words.size() * sizeof(int64_t));
    if (!std::equal(words.begin() + 1, words.end(), indices.begin(), indices.end())) {
      indices.assign(words.begin() + 1, words.end());
      group.clear();
      for (int64_t i : indices) group.push_back(job.policies.at(static_cast<size_t>(i)));
    }
    try {
      const AblationDocumentPart part =
          RunAblationDocument(*job.model.model, prepared.corpus, prepared.header.tokens, windows,
                              group, words[0], pass);
      if (part.complete)
        mpi.Send(0, kTagResult, Pack(part));
      else
        mpi.Send(0, kTagStopped, "");
    } catch (const std::exception& e) {
      mpi.Send(0, kTagFailed, e.what());
    }
  }
  return pass.stop != nullptr && pass.stop->load() ? 130 : 0;
}

// Rank 0: the document queue, its own share of the work, and the assembly of each group.
class Coordinator {
 public:
  Coordinator(const MpiSession& mpi, const AblationJob& job, const PreparedAblation& prepared,
              bool terminal, std::ostream& err)
      : mpi_(mpi),
        job_(job),
        prepared_(prepared),
        terminal_(terminal),
        err_(err),
        told_to_stop_(static_cast<size_t>(mpi.size()), false) {
    told_to_stop_[0] = true;
  }

  // The pass of RunPreparedAblation: the pending policies, group by group.
  AblationPassResult Run(const std::vector<AblationPolicy>& pending,
                         const AblationPassOptions& pass);
  // Replies "stop" to every worker not yet stopped (to its next message when it is busy).
  void StopWorkers();

 private:
  int64_t documents() const { return static_cast<int64_t>(prepared_.corpus.documents.size()); }
  void Serve(bool wait);
  void Handle(int source, int tag, const std::string& message);
  void Reply(int worker);
  void Progress();

  const MpiSession& mpi_;
  const AblationJob& job_;
  const PreparedAblation& prepared_;
  bool terminal_;
  std::ostream& err_;
  std::vector<bool> told_to_stop_;
  std::vector<int> waiting_;  // workers whose request waits for the next group
  std::vector<std::string> failures_;
  bool stopping_ = false;
  // The group in progress.
  std::vector<int64_t> indices_;
  std::unique_ptr<AblationGroupAssembly> assembly_;
  int64_t next_doc_ = 0;
  // Progress: predictions scored (per policy) of this run, out of total_.
  const AblationPassOptions* pass_ = nullptr;
  int64_t evaluated_ = 0, total_ = 0;
  Clock::time_point start_ = Clock::now(), last_line_ = Clock::now();
};

void Coordinator::Reply(int worker) {
  if (stopping_) {
    mpi_.Send(worker, kTagStop, "");
    told_to_stop_[static_cast<size_t>(worker)] = true;
  } else if (assembly_ && next_doc_ < documents()) {
    std::vector<int64_t> words{next_doc_++};
    words.insert(words.end(), indices_.begin(), indices_.end());
    mpi_.Send(worker, kTagAssign, AsBytes(words));
  } else {
    waiting_.push_back(worker);
  }
}

void Coordinator::Handle(int source, int tag, const std::string& message) {
  if (tag == kTagResult && !stopping_) {
    const AblationDocumentPart part = Unpack(message);
    assembly_->Add(part);
    evaluated_ += static_cast<int64_t>(part.base_nll.size() * indices_.size());
  } else if (tag == kTagFailed) {
    failures_.push_back("rank " + std::to_string(source) + ": " + message);
    stopping_ = true;
  } else if (tag == kTagStopped) {
    stopping_ = true;
  } else if (tag != kTagRequest && tag != kTagResult) {
    Fail("mpirun", "internal error: unexpected message tag " + std::to_string(tag));
  }
  Reply(source);
}

void Coordinator::Serve(bool wait) {
  int source = 0, tag = 0;
  while (mpi_.Probe(source, tag, wait)) {
    Handle(source, tag, mpi_.Receive(source, tag));
    wait = false;
  }
  if (pass_ != nullptr && pass_->stop != nullptr && pass_->stop->load()) stopping_ = true;
  if (stopping_)
    for (int w : std::exchange(waiting_, {})) Reply(w);
  Progress();
}

void Coordinator::Progress() {
  if (pass_ != nullptr && pass_->on_progress) pass_->on_progress(evaluated_, total_);
  // Under mpirun stderr is rarely a terminal: a plain line every 10 seconds instead of the bar.
  if (terminal_ || Clock::now() - last_line_ < std::chrono::seconds(10)) return;
  last_line_ = Clock::now();
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const double done = total_ > 0 ? static_cast<double>(evaluated_) / total_ : 1.0;
  char line[200];
  std::snprintf(line, sizeof(line),
                "progress: %.1f%% of %s predictions (%lld documents x %lld policies) on %d "
                "ranks, %.0fs left",
                100.0 * done, ShortCount(static_cast<double>(total_)).c_str(),
                static_cast<long long>(documents()),
                static_cast<long long>(prepared_.header.tokens.count() > 0
                                           ? total_ / prepared_.header.tokens.count()
                                           : 0),
                mpi_.size(), done > 0 ? seconds * (1 - done) / done : 0.0);
  err_ << line << std::endl;
}

AblationPassResult Coordinator::Run(const std::vector<AblationPolicy>& pending,
                                    const AblationPassOptions& pass) {
  pass_ = &pass;
  const ScoredTokens& tokens = prepared_.header.tokens;
  total_ = static_cast<int64_t>(pending.size()) * tokens.count();
  const AblationWindows windows = AblationWindows::Plan(prepared_.corpus, pass.windows);
  AblationPassResult out;
  // Rank 0's own documents: it serves the queue after every policy of every batch.
  AblationPassOptions own = pass;
  own.on_progress = [&](int64_t rows, int64_t) {
    evaluated_ += rows;
    Serve(false);
  };
  const size_t step = static_cast<size_t>(std::max(pass.group_size, 1));
  for (size_t g0 = 0; g0 < pending.size() && !stopping_; g0 += step) {
    const std::vector<AblationPolicy> group(
        pending.begin() + static_cast<ptrdiff_t>(g0),
        pending.begin() + static_cast<ptrdiff_t>(std::min(pending.size(), g0 + step)));
    indices_.clear();
    for (const AblationPolicy& p : group)
      indices_.push_back(std::find_if(job_.policies.begin(), job_.policies.end(),
                                      [&](const AblationPolicy& q) { return q.name == p.name; }) -
                         job_.policies.begin());
    assembly_ = std::make_unique<AblationGroupAssembly>(*job_.model.model, tokens, group, pass);
    next_doc_ = 0;
    for (int w : std::exchange(waiting_, {})) Reply(w);
    while (!stopping_ && assembly_->documents() < documents()) {
      Serve(false);
      if (stopping_ || next_doc_ >= documents()) {
        Serve(!stopping_ && assembly_->documents() < documents());
        continue;
      }
      const AblationDocumentPart part = RunAblationDocument(
          *job_.model.model, prepared_.corpus, tokens, windows, group, next_doc_++, own);
      if (!part.complete) break;
      assembly_->Add(part);
    }
    if (stopping_ || assembly_->documents() < documents()) {
      out.interrupted = true;
      break;
    }
    std::vector<float> base_nll;
    for (AblationResult& r : assembly_->Finish(base_nll)) {
      if (pass.on_result) pass.on_result(r, base_nll);
      out.results.push_back(std::move(r));
    }
    out.base_nll = std::move(base_nll);
  }
  assembly_.reset();
  pass_ = nullptr;
  StopWorkers();
  if (!failures_.empty()) Fail("mpirun", failures_.front());
  return out;
}

void Coordinator::StopWorkers() {
  stopping_ = true;
  for (int w : std::exchange(waiting_, {})) Reply(w);
  while (std::find(told_to_stop_.begin(), told_to_stop_.end(), false) != told_to_stop_.end()) {
    int source = 0, tag = 0;
    mpi_.Probe(source, tag, true);
    Handle(source, tag, mpi_.Receive(source, tag));
  }
}

}  // namespace

int RunDistributedAblation(const MpiSession& mpi, const std::function<AblationJob()>& open,
                           AblationOptions o, const std::string& command_line,
                           const std::atomic<bool>* stop, bool terminal, std::ostream& out,
                           std::ostream& err) {
  const int rank = mpi.rank(), ranks = mpi.size();
  std::unique_ptr<AblationJob> job;
  std::unique_ptr<PreparedAblation> prepared;
  o.pass.stop = stop;
  o.progress = terminal && rank == 0;
  try {
    job = std::make_unique<AblationJob>(open());
    prepared = std::make_unique<PreparedAblation>(PrepareAblation(job->model, o));
  } catch (const std::exception& e) {
    // Set-up failed here (model, corpus, flags): report it, and tell the others.
    err << "moescope: error: " << (ranks > 1 ? "rank " + std::to_string(rank) + ": " : "")
        << e.what() << std::endl;
    try {
      mpi.CheckSameRun(false, "", "could not start (its error is above); nothing was run");
    } catch (const Error&) {
    }
    return 1;
  }
  try {
    mpi.CheckSameRun(true, RunFingerprint(command_line, prepared->header.run, job->policies, ranks),
                     "could not start (its error is above); nothing was run");
  } catch (const Error& e) {
    if (rank == 0) err << "moescope: error: " << e.what() << std::endl;
    return 1;
  }
  if (rank != 0) {
    int code = 0;
    try {
      code = RunWorker(mpi, *job, *prepared, o.pass);
    } catch (const std::exception& e) {
      // Only a broken exchange lands here; the job cannot go on.
      err << "moescope: error: rank " << rank << ": " << e.what() << std::endl;
      return 1;
    }
    mpi.GatherTraffic();
    // Rank 0 reports failures and exits 1: Open MPI's mpirun ends the whole job when any rank
    // exits non-zero, which would kill rank 0 before it could report.
    return code;
  }
  Coordinator coordinator(mpi, *job, *prepared, terminal, err);
  int code = 0;
  try {
    const AblationSummary summary = RunPreparedAblation(
        job->policies, o, *prepared,
        [&](const std::vector<AblationPolicy>& pending, const AblationPassOptions& pass) {
          return coordinator.Run(pending, pass);
        });
    out << FormatAblationTable(summary);
    std::string text = FormatAblationSummary(summary);
    text.insert(std::min(text.find('\n'), text.size()),
                " on " + std::to_string(ranks) + (ranks == 1 ? " rank" : " ranks"));
    err << text << "\n";
    code = summary.interrupted ? 130 : 0;
  } catch (const std::exception& e) {
    err << "moescope: error: " << e.what() << std::endl;
    code = 1;
  }
  coordinator.StopWorkers();
  err << FormatTraffic(mpi.GatherTraffic()) << std::endl;
  return code;
}

}  // namespace moe::distributed
