// `moescope trace` as a process: killed with SIGKILL mid-run it leaves a readable, incomplete
// prefix of whole documents that --resume completes to exactly the uninterrupted trace; a SWMR
// reader following a running trace sees a growing, consistent prefix.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_compare.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::Quote;

namespace {

std::vector<std::string> TraceArgs(const std::filesystem::path& corpus,
                                   const std::filesystem::path& out) {
  return {"trace",
          "--model",
          trace_test::TinyModel().string(),
          "--corpus",
          corpus.string(),
          "--output",
          out.string(),
          "--commit-tokens",
          "1024",
          "--batch-size",
          "2",
          "--record-logits",
          "--logit-sample-rate",
          "0.1"};
}

std::string CommandLine(const std::vector<std::string>& args) {
  std::string cmd = Quote(trace_test::Cli());
  for (const std::string& a : args) cmd.append(" ").append(Quote(a));
  return cmd;
}

bool Exited(pid_t pid, int* status) {
  return ::waitpid(pid, status, WNOHANG) == pid;
}

// Committed documents of a trace being written, or -1 while it cannot be opened yet.
int64_t CommittedDocuments(const std::filesystem::path& out) {
  try {
    return TraceReader(out, /*swmr=*/true).num_documents();
  } catch (const Error&) {
    return -1;
  }
}

// Starts `moescope trace` and waits until at least `min_docs` documents are committed; fails the
// test when the run finishes first. Returns the running process.
pid_t SpawnUntilCommitted(const std::vector<std::string>& args, const std::filesystem::path& out,
                          const std::filesystem::path& log, int64_t min_docs) {
  const pid_t pid = trace_test::SpawnCli(args, log);
  REQUIRE(pid > 0);
  int status = 0;
  while (CommittedDocuments(out) < min_docs) {
    if (Exited(pid, &status))
      FAIL("moescope trace finished before it could be stopped; log:\n"
           << trace_test::ReadText(log));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pid;
}

// A corpus of `docs` license documents in `dir` and its uninterrupted trace, reference.h5.
struct Reference {
  std::filesystem::path corpus, trace;
};
Reference MakeReference(const std::filesystem::path& dir, int docs) {
  Reference r{dir / "licenses.jsonl", dir / "reference.h5"};
  trace_test::WriteLicenseCorpus(r.corpus, docs);
  const trace_test::CommandResult ref =
      trace_test::RunCommand(CommandLine(TraceArgs(r.corpus, r.trace)));
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  return r;
}

// An interrupted trace: readable, not complete, and holding between `min_docs` and all but one
// of the `docs` documents; returns how many it committed.
int64_t CheckInterruptedPrefix(const std::filesystem::path& out, int64_t min_docs, int64_t docs) {
  const TraceReader r(out);
  CHECK_FALSE(r.info().complete);
  const int64_t committed = r.num_documents();
  CHECK(committed >= min_docs);
  CHECK(committed < docs);
  return committed;
}

}  // namespace

TEST_CASE("kill -9 leaves a readable prefix and --resume completes it", "[trace][crash]") {
  const auto dir = TempDir("trace_crash");
  constexpr int kDocs = 300;
  const auto [corpus, reference] = MakeReference(dir, kDocs);
  const auto out = dir / "killed.h5";

  const pid_t pid = SpawnUntilCommitted(TraceArgs(corpus, out), out, dir / "killed.log", kDocs / 5);
  int status = 0;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));

  const int64_t committed = CheckInterruptedPrefix(out, kDocs / 5, kDocs);
  {
    const TraceReader r(out);
    // The prefix is whole documents, identical to the reference's first documents.
    const TraceReader want(reference);
    CHECK(r.ReadTokens(0, r.num_tokens()).id == want.ReadTokens(0, r.num_tokens()).id);
    CHECK(r.SourceIds(0, committed) == want.SourceIds(0, committed));
  }
  const trace_test::CommandResult py = trace_test::RunChecker(out, {}, /*swmr=*/true);
  INFO("python check of the killed trace (h5py, swmr=True):\n" << py.output);
  CHECK(py.status == 0);
  CHECK_THAT(py.output, Catch::Contains("complete=0"));

  std::vector<std::string> resume = TraceArgs(corpus, out);
  resume.push_back("--resume");
  const trace_test::CommandResult resumed = trace_test::RunCommand(CommandLine(resume));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.output, Catch::Contains(std::to_string(committed) + " resumed"));
  trace_test::CheckSameTrace(reference, out);
  const TraceReader done(out);
  const std::vector<std::string> ids = done.SourceIds(0, done.num_documents());
  REQUIRE(ids.size() == static_cast<size_t>(kDocs));
  for (int d = 0; d < kDocs; ++d) CHECK(ids[d] == "doc-" + std::to_string(d));
  // A finished trace opens in plain (non-SWMR) mode again.
  const trace_test::CommandResult plain = trace_test::RunChecker(out);
  INFO(plain.output);
  CHECK(plain.status == 0);
}

TEST_CASE("SIGINT and SIGTERM commit the finished documents and --resume completes the trace",
          "[trace][crash]") {
  const auto dir = TempDir("trace_signal");
  constexpr int kDocs = 300;
  const auto [corpus, reference] = MakeReference(dir, kDocs);
  for (const int sig : {SIGINT, SIGTERM}) {
    INFO("signal " << sig);
    const auto out = dir / ("stopped-" + std::to_string(sig) + ".h5");
    const auto log = dir / ("stopped-" + std::to_string(sig) + ".log");
    const pid_t pid = SpawnUntilCommitted(TraceArgs(corpus, out), out, log, kDocs / 10);
    int status = 0;
    ::kill(pid, sig);
    ::waitpid(pid, &status, 0);
    // It stopped on its own: exit code 130 and a message, not death by the signal.
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK_THAT(trace_test::ReadText(log), Catch::Contains("--resume"));
    const int64_t committed = CheckInterruptedPrefix(out, kDocs / 10, kDocs);
    std::vector<std::string> resume = TraceArgs(corpus, out);
    resume.push_back("--resume");
    const trace_test::CommandResult resumed = trace_test::RunCommand(CommandLine(resume));
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.output, Catch::Contains(std::to_string(committed) + " resumed"));
    trace_test::CheckSameTrace(reference, out);
  }
}

TEST_CASE("a SWMR reader follows a growing trace", "[trace][swmr]") {
  const auto dir = TempDir("trace_swmr");
  const auto corpus = dir / "licenses.jsonl";
  constexpr int kDocs = 200;
  trace_test::WriteLicenseCorpus(corpus, kDocs);
  const auto out = dir / "growing.h5";
  const pid_t pid = trace_test::SpawnCli(TraceArgs(corpus, out), dir / "writer.log");
  REQUIRE(pid > 0);

  std::unique_ptr<TraceReader> reader;
  int status = 0;
  bool exited = false;
  while (!reader && !exited) {  // the file exists once the writer has started SWMR mode
    try {
      reader = std::make_unique<TraceReader>(out, /*swmr=*/true);
    } catch (const Error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    exited = Exited(pid, &status);
  }
  REQUIRE(reader);
  std::vector<int64_t> seen_offsets = {0};
  int growing_states = 0;
  bool python_checked = false;
  for (;;) {
    reader->Refresh();
    const std::vector<int64_t> offsets(reader->doc_offsets().begin(), reader->doc_offsets().end());
    // The prefix only grows, and what was committed never changes.
    REQUIRE(offsets.size() >= seen_offsets.size());
    REQUIRE(std::equal(seen_offsets.begin(), seen_offsets.end(), offsets.begin()));
    if (offsets.size() > seen_offsets.size() && !reader->info().complete) {
      ++growing_states;
      const int64_t n = reader->num_tokens();
      const TokenRows tokens = reader->ReadTokens(0, n);
      const RoutingRows routing = reader->ReadRouting(0, n);
      for (int64_t d = 0; d < reader->num_documents(); ++d)
        for (int64_t t = offsets[d]; t < offsets[d + 1]; ++t)
          if (tokens.doc[t] != d) FAIL("token " << t << " is not in document " << d);
      const auto [low, high] = std::minmax_element(routing.ids.begin(), routing.ids.end());
      CHECK((*low >= -1 && *high < reader->info().num_experts));
      if (!python_checked && growing_states >= 2) {  // h5py follows too (it takes a while)
        const trace_test::CommandResult py = trace_test::RunChecker(out, {}, /*swmr=*/true);
        INFO("python follower (h5py swmr=True):\n" << py.output);
        CHECK(py.status == 0);
        python_checked = true;
      }
    }
    seen_offsets = offsets;
    if (reader->info().complete || exited) break;
    exited = Exited(pid, &status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) ::waitpid(pid, &status, 0);
  INFO(trace_test::ReadText(dir / "writer.log"));
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  reader->Refresh();
  CHECK(reader->info().complete);
  CHECK(reader->num_documents() == kDocs);
  CHECK(growing_states >= 2);
  CHECK(python_checked);
}

TEST_CASE("a second writer on a trace being written fails at once and the first finishes intact",
          "[trace][crash][writers]") {
  const auto dir = TempDir("trace_writers");
  constexpr int kDocs = 300;
  const auto [corpus, reference] = MakeReference(dir, kDocs);
  const std::string kBusy = "is being written by another process";

  // The second writer starts once the first has started SWMR writing, after its first commit,
  // and mid-run; with and without --resume.
  for (const int64_t start_after_docs : {int64_t{0}, int64_t{1}, int64_t{kDocs / 5}})
    for (const bool second_resumes : {false, true}) {
      INFO("second writer after " << start_after_docs << " documents, resume " << second_resumes);
      const std::string name =
          "second-" + std::to_string(start_after_docs) + (second_resumes ? "-resume" : "");
      const auto out = dir / (name + ".h5");
      const pid_t first = SpawnUntilCommitted(TraceArgs(corpus, out), out,
                                              dir / (name + ".first.log"), start_after_docs);
      std::vector<std::string> args = TraceArgs(corpus, out);
      if (second_resumes) args.push_back("--resume");
      const trace_test::CommandResult second = trace_test::RunCommand(CommandLine(args));
      int status = 0;
      const bool first_still_running = !Exited(first, &status);
      INFO("second writer: " << second.output);
      CHECK(second.status == 1);
      CHECK_THAT(second.output, Catch::Contains(out.string() + ": " + kBusy));
      if (first_still_running) ::waitpid(first, &status, 0);
      REQUIRE(WIFEXITED(status));
      INFO("first writer: " << trace_test::ReadText(dir / (name + ".first.log")));
      REQUIRE(WEXITSTATUS(status) == 0);
      trace_test::CheckSameTrace(reference, out);
    }

  // Started together, whichever locks the file second fails (or, if the first has already
  // finished, rewrites it); either way the trace is the uninterrupted one.
  const auto out = dir / "together.h5";
  const pid_t a = trace_test::SpawnCli(TraceArgs(corpus, out), dir / "together.a.log");
  const pid_t b = trace_test::SpawnCli(TraceArgs(corpus, out), dir / "together.b.log");
  int succeeded = 0;
  for (const auto& [pid, log] :
       {std::pair{a, dir / "together.a.log"}, {b, dir / "together.b.log"}}) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string text = trace_test::ReadText(log);
    INFO(text);
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 0)
      ++succeeded;
    else
      CHECK_THAT(text, Catch::Contains(kBusy));
  }
  CHECK(succeeded >= 1);
  trace_test::CheckSameTrace(reference, out);
}
