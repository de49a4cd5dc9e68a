// --resume in-process: a trace cut back to a committed prefix, with debris of an unfinished commit
// after it (the state a crash between writing tokens and extending /docs/offset leaves), resumes
// to exactly the uninterrupted trace; a run that does not match the trace is refused.
#include <hdf5.h>

#include <atomic>

#include <catch2/catch.hpp>

#include "analysis/common/hdf5_util.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/trace_load.h"
#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_compare.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

const LoadedModel& Model() {
  static const LoadedModel m = LoadModel(trace_test::TinyModel());
  return m;
}

TraceOptions Options(const std::filesystem::path& out) {
  TraceOptions o = trace_test::TinyOptions(out);
  o.run.record_logits = true;
  o.run.logit_sample_rate = 0.5;
  return o;
}

// A copy of `full` that looks interrupted after `keep` documents: /docs/offset cut back, every
// other dataset (and /stats) left as it was, complete = 0.
std::filesystem::path Interrupted(const std::filesystem::path& full, const std::string& name,
                                  hsize_t keep) {
  const auto p = TempDir("trace_cut_" + name) / "cut.h5";
  std::filesystem::copy_file(full, p);
  h5::SilenceErrors();
  h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  REQUIRE(f.valid());
  h5::WriteFlag(f.id(), trace::attr::kComplete, false, {p.string(), "/"});
  h5::Handle offset = h5::OpenDataset(f.id(), trace::ds::kDocOffset, {p.string(), "offset"});
  h5::SetRows(offset.id(), keep + 1, {p.string(), "offset"});
  return p;
}

}  // namespace

TEST_CASE("resume continues an interrupted trace to the uninterrupted result", "[trace][resume]") {
  const auto full = TempDir("trace_resume") / "full.h5";
  RunTrace(Model(), RoutingPolicy{}, Options(full));
  const auto cut = Interrupted(full, "ok", 3);
  {
    const TraceReader r(cut);
    CHECK_FALSE(r.info().complete);
    CHECK(r.num_documents() == 3);
    CHECK(r.num_tokens() == TraceReader(full).Document(2).token_end);
    // The stored statistics ran ahead of the committed prefix; the recomputed ones do not.
    CHECK(r.ReadStats().load() != ComputeDomainLoad(r).load());
  }
  TraceOptions o = Options(cut);
  o.resume = true;
  const TraceSummary s = RunTrace(Model(), RoutingPolicy{}, o);
  CHECK(s.resumed_documents == 3);
  CHECK(s.documents == 10);
  CHECK_THAT(FormatSummary(s), Catch::Contains("3 resumed"));
  trace_test::CheckSameTrace(full, cut);

  const TraceSummary again = RunTrace(Model(), RoutingPolicy{}, o);
  CHECK(again.already_complete);
  CHECK_THAT(FormatSummary(again), Catch::Contains("already complete"));
}

TEST_CASE("resume keeps /tokens/predicted consistent, also for a trace without it",
          "[trace][resume][compat]") {
  const auto full = TempDir("trace_resume_predicted") / "full.h5";
  RunTrace(Model(), RoutingPolicy{}, Options(full));
  REQUIRE(TraceReader(full).has_predictions());
  // An interrupted trace whose /tokens/predicted has debris past the committed prefix (the
  // Interrupted copy keeps every row): resume cuts it back and appends the rest.
  const auto cut = Interrupted(full, "predicted", 4);
  TraceOptions o = Options(cut);
  o.resume = true;
  RunTrace(Model(), RoutingPolicy{}, o);
  trace_test::CheckSameTrace(full, cut);  // /tokens/predicted row for row

  // A trace written before the dataset existed resumes without it: never half a dataset.
  const auto old = Interrupted(full, "old_predicted", 4);
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(old.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    REQUIRE(H5Ldelete(f.id(), trace::ds::kTokenPredicted, H5P_DEFAULT) >= 0);
  }
  TraceOptions o_old = Options(old);
  o_old.resume = true;
  RunTrace(Model(), RoutingPolicy{}, o_old);
  const TraceReader r(old);
  CHECK(r.info().complete);
  CHECK_FALSE(r.has_predictions());
  trace_test::CheckSameTrace(full, old, /*predictions=*/false);
}

TEST_CASE("resume refuses a run that does not match the trace", "[trace][resume]") {
  const auto full = TempDir("trace_resume_mismatch") / "full.h5";
  RunTrace(Model(), RoutingPolicy{}, Options(full));
  const auto cut = Interrupted(full, "mismatch", 2);
  TraceOptions o = Options(cut);
  o.resume = true;
  SECTION("another policy") {
    const RoutingPolicy other = PolicyFromFlags("0:1", "", "", "", Model().config());
    CHECK_THROWS_WITH(RunTrace(Model(), other, o),
                      Catch::Contains(cut.string()) && Catch::Contains("routing policy differs"));
  }
  SECTION("another corpus") {
    o.run.only_domains = {"legal", "code"};
    CHECK_THROWS_WITH(RunTrace(Model(), RoutingPolicy{}, o), Catch::Contains("corpus"));
  }
  SECTION("another logit sample rate") {
    o.run.logit_sample_rate = 0.75;
    CHECK_THROWS_WITH(RunTrace(Model(), RoutingPolicy{}, o),
                      Catch::Contains("--logit-sample-rate"));
  }
  SECTION("other windows") {
    o.run.windows = {128, 128};
    CHECK_THROWS_WITH(RunTrace(Model(), RoutingPolicy{}, o), Catch::Contains("windowing differs"));
  }
  SECTION("nothing to resume") {
    o.output = TempDir("trace_resume_none") / "missing.h5";
    CHECK_THROWS_WITH(RunTrace(Model(), RoutingPolicy{}, o), Catch::Contains("does not exist"));
  }
  // A refused resume leaves the trace as it was.
  const TraceReader r(cut);
  CHECK(r.num_documents() == 2);
  CHECK_FALSE(r.info().complete);
}

TEST_CASE("a stopped trace reports progress, stays resumable and resumes to the whole trace",
          "[trace][resume][stop]") {
  const auto dir = TempDir("trace_stop");
  const auto full = dir / "full.h5";
  TraceOptions whole = Options(full);
  whole.batch_size = 1;  // groups of 8 windows: the tiny corpus takes several
  RunTrace(Model(), RoutingPolicy{}, whole);

  const auto stopped = dir / "stopped.h5";
  TraceOptions o = whole;
  o.output = stopped;
  o.commit_tokens = 1;  // commit after every group
  std::atomic<bool> stop{false};
  std::vector<std::pair<int64_t, int64_t>> calls;
  o.stop = &stop;
  o.on_progress = [&](int64_t done, int64_t total) {
    calls.emplace_back(done, total);
    if (done > 0) stop = true;  // after the first group
  };
  const TraceSummary s = RunTrace(Model(), RoutingPolicy{}, o);
  CHECK(s.interrupted);
  REQUIRE(calls.size() == 2);  // at the start and after the one group run
  const int64_t total = TraceReader(full).num_tokens();
  CHECK(calls[0] == std::pair<int64_t, int64_t>{0, total});
  CHECK(calls[1].first > 0);
  CHECK(calls[1].first < total);
  CHECK(calls[1].second == total);
  {
    const TraceReader r(stopped);
    CHECK_FALSE(r.info().complete);
    CHECK(r.num_documents() == s.documents);
    CHECK(r.num_documents() < 10);
    CHECK(r.num_tokens() <= calls[1].first);  // whole documents only
  }

  o.stop = nullptr;
  o.on_progress = nullptr;
  o.resume = true;
  const TraceSummary resumed = RunTrace(Model(), RoutingPolicy{}, o);
  CHECK_FALSE(resumed.interrupted);
  CHECK(resumed.resumed_documents == s.documents);
  CHECK(resumed.documents == 10);
  trace_test::CheckSameTrace(full, stopped);
}
