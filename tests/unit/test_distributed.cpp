// Sharded traces (docs/distributed.md): the document plan, `moescope merge` (virtual datasets
// over shards made by separate runs) and, in builds with MOESCOPE_MPI, `mpirun -np N moescope
// trace` and `stats`: each equal to the single-process result (routing and NLL bit-identical).
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <sstream>

#include "analysis/common/hdf5_util.h"
#include "analysis/distributed/shard_plan.h"
#include "analysis/run/trace_runner.h"
#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_merge.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::Quote;
using trace_test::RunCommand;

namespace {

const LoadedModel& Model() {
  static const LoadedModel m = LoadModel(trace_test::TinyModel());
  return m;
}

// One window per forward pass: a token's results do not depend on which documents share its
// batch, so any split of the corpus gives the same bits.
TraceOptions Options(const std::filesystem::path& out) {
  TraceOptions o = trace_test::TinyOptions(out);
  o.batch_size = 1;
  o.run.record_logits = true;
  o.run.logit_sample_rate = 0.5;
  return o;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Every committed row equal, NLL and weights bit for bit; statistics equal (importance to
// rounding: shards sum it in another order).
void CheckIdentical(const std::filesystem::path& want_path, const std::filesystem::path& got_path) {
  const TraceReader want(want_path), got(got_path);
  INFO("comparing " << got_path.string() << " with " << want_path.string());
  CHECK(got.info().complete);
  CHECK(got.info().corpus_sha256 == want.info().corpus_sha256);
  CHECK(got.info().corpus == want.info().corpus);
  CHECK(got.domains() == want.domains());
  REQUIRE(got.num_documents() == want.num_documents());
  REQUIRE(got.num_tokens() == want.num_tokens());
  CHECK(std::equal(got.doc_offsets().begin(), got.doc_offsets().end(), want.doc_offsets().begin()));
  CHECK(std::equal(got.doc_domains().begin(), got.doc_domains().end(), want.doc_domains().begin()));
  CHECK(got.SourceIds(0, got.num_documents()) == want.SourceIds(0, want.num_documents()));
  const int64_t n = want.num_tokens();
  const TokenRows a = want.ReadTokens(0, n), b = got.ReadTokens(0, n);
  CHECK(b.id == a.id);
  CHECK(b.position == a.position);
  CHECK(b.doc == a.doc);
  CHECK(b.predicted == a.predicted);
  CHECK(SameBits(b.nll, a.nll));
  const RoutingRows ra = want.ReadRouting(0, n), rb = got.ReadRouting(0, n);
  CHECK(rb.ids == ra.ids);
  CHECK(SameBits(rb.weights, ra.weights));
  REQUIRE(got.num_logit_rows() == want.num_logit_rows());
  CHECK(std::vector<int64_t>(got.logit_tokens().begin(), got.logit_tokens().end()) ==
        std::vector<int64_t>(want.logit_tokens().begin(), want.logit_tokens().end()));
  if (want.num_logit_rows() > 0)
    CHECK(SameBits(got.ReadRouterLogits(0, got.num_logit_rows()).logits,
                   want.ReadRouterLogits(0, want.num_logit_rows()).logits));
  const ExpertStats sa = want.ReadStats(), sb = got.ReadStats();
  CHECK(sb.load() == sa.load());
  for (size_t i = 0; i < sa.importance().size(); ++i)
    CHECK(sb.importance()[i] == Approx(sa.importance()[i]).epsilon(1e-12));
}

// The shards of a `ranks`-way run made in this process, as the ranks of an MPI run make them.
std::vector<std::filesystem::path> TraceShards(const std::filesystem::path& out, int ranks) {
  std::vector<std::filesystem::path> shards;
  for (int r = 0; r < ranks; ++r) {
    TraceOptions o = Options(distributed::ShardPath(out, r));
    o.select_documents = [&](const Corpus& corpus, const TraceHeader&) {
      std::vector<int64_t> tokens;
      for (const CorpusDocument& d : corpus.documents)
        tokens.push_back(static_cast<int64_t>(d.ids.size()));
      return distributed::PlanShards(tokens, ranks)[static_cast<size_t>(r)];
    };
    RunTrace(Model(), RoutingPolicy{}, o);
    shards.push_back(o.output);
  }
  return shards;
}

// The tiny corpus's lines [begin, end) as a file of their own.
std::filesystem::path CorpusPart(const std::filesystem::path& dir, int begin, int end) {
  std::ifstream in(trace_test::TinyCorpus());
  const auto p = dir / ("part" + std::to_string(begin) + ".jsonl");
  std::ofstream out(p);
  std::string line;
  for (int i = 0; std::getline(in, line); ++i)
    if (i >= begin && i < end) out << line << "\n";
  return p;
}

std::string Cli(const std::string& args) {
  return Quote(trace_test::Cli()) + " " + args;
}

// Two CSV files with the same cells, numbers equal to a relative `tolerance`.
void CheckSameCsv(const std::filesystem::path& want, const std::filesystem::path& got,
                  double tolerance) {
  std::ifstream a(want), b(got);
  std::string la, lb;
  int line = 0, differ = 0;
  double worst = 0;
  while (std::getline(a, la)) {
    ++line;
    REQUIRE(std::getline(b, lb));
    if (la == lb) continue;
    std::stringstream sa(la), sb(lb);
    std::string ca, cb;
    while (std::getline(sa, ca, ',')) {
      REQUIRE(std::getline(sb, cb, ','));
      if (ca == cb) continue;
      INFO(got.string() << " line " << line << ": " << ca << " vs " << cb);
      char* end = nullptr;
      const double x = std::strtod(ca.c_str(), &end), y = std::strtod(cb.c_str(), nullptr);
      REQUIRE(*end == '\0');
      worst = std::max(worst, std::abs(x - y) / std::max(std::abs(x), 1e-300));
      ++differ;
    }
  }
  CHECK_FALSE(std::getline(b, lb));
  INFO(differ << " cells differ in their last bits, by at most " << worst << " relative");
  CHECK(worst <= tolerance);
}

}  // namespace

TEST_CASE("shards are contiguous, cover the corpus and balance tokens", "[distributed]") {
  const std::vector<int64_t> tokens = {100, 100, 100, 100, 10, 10, 10, 500, 20, 50};
  for (int ranks : {1, 2, 3, 4, 7, 12}) {
    const auto plan = distributed::PlanShards(tokens, ranks);
    REQUIRE(plan.size() == static_cast<size_t>(ranks));
    CHECK(plan.front().first == 0);
    CHECK(plan.back().second == static_cast<int64_t>(tokens.size()));
    for (size_t r = 1; r < plan.size(); ++r) CHECK(plan[r].first == plan[r - 1].second);
    CHECK(plan == distributed::PlanShards(tokens, ranks));  // deterministic
  }
  const auto two = distributed::PlanShards(tokens, 2);
  CHECK(two[0] == std::pair<int64_t, int64_t>{0, 7});  // 430 of 1000 tokens; 930 is farther
  CHECK(distributed::PlanShards(std::vector<int64_t>{5}, 3) ==
        std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 1}, {1, 1}});
  CHECK(distributed::ShardPath("/d/out.h5", 3) == "/d/out.rank-0003.h5");
  CHECK(distributed::ShardPath("out", 12) == "out.rank-0012");
}

TEST_CASE("shards of a sharded run merge into exactly the single-process trace",
          "[distributed][merge]") {
  const auto dir = TempDir("dist_merge");
  const auto whole = dir / "whole.h5";
  RunTrace(Model(), RoutingPolicy{}, Options(whole));
  for (int ranks : {1, 2, 3, 12}) {
    DYNAMIC_SECTION(ranks << " shards") {
      const auto out = dir / ("merged" + std::to_string(ranks) + ".h5");
      const auto shards = TraceShards(out, ranks);
      MergeOptions m;
      const TraceReader w(whole);
      m.corpus = w.info().corpus;
      m.domains = w.domains();
      const MergeSummary s = MergeTraces(shards, out, m);
      CHECK(s.documents == 10);
      CheckIdentical(whole, out);
      // The bulky datasets are virtual: the merged file holds only the re-based tables.
      h5::Handle f(H5Fopen(out.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
      h5::Handle ds(H5Dopen2(f.id(), trace::ds::kTopkIds, H5P_DEFAULT));
      h5::Handle dcpl(H5Dget_create_plist(ds.id()));
      CHECK(H5Pget_layout(dcpl.id()) == H5D_VIRTUAL);
    }
  }
}

TEST_CASE("moescope merge joins traces of separate runs and h5py, stats and compare read it",
          "[distributed][merge][cli]") {
  const auto dir = TempDir("dist_merge_cli");
  std::filesystem::create_directories(dir / "sub");
  // Separate runs number documents from 0, so their logit samples differ from one run's: sample
  // every token.
  const std::string common = "trace --model " + Quote(trace_test::TinyModel().string()) +
                             " --batch-size 1 --record-logits --logit-sample-rate 1";
  auto trace = [&](const std::filesystem::path& corpus, const std::filesystem::path& out) {
    const auto r = RunCommand(
        Cli(common + " --corpus " + Quote(corpus.string()) + " -o " + Quote(out.string())));
    INFO(r.output);
    REQUIRE(r.status == 0);
  };
  const auto whole = dir / "whole.h5";
  trace(trace_test::TinyCorpus(), whole);
  trace(CorpusPart(dir, 0, 4), dir / "sub/a.h5");
  trace(CorpusPart(dir, 4, 7), dir / "sub/b.h5");
  trace(CorpusPart(dir, 7, 100), dir / "c.h5");
  const auto merged = dir / "merged.h5";
  const auto r = RunCommand(Cli("merge " + Quote((dir / "sub/a.h5").string()) + " " +
                                Quote((dir / "sub/b.h5").string()) + " " +
                                Quote((dir / "c.h5").string()) + " -o " + Quote(merged.string())));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::StartsWith("merged 3 shards, 10 documents"));
  {
    const TraceReader w(whole), m(merged);
    CHECK(m.info().corpus_sha256 == w.info().corpus_sha256);
    CHECK(nlohmann::json::parse(m.info().corpus)["files"].size() == 3);
  }
  {
    // Compare everything but the corpus description (its file lists differ).
    const TraceReader w(whole), m(merged);
    const int64_t n = w.num_tokens();
    REQUIRE(m.num_tokens() == n);
    CHECK(SameBits(m.ReadTokens(0, n).nll, w.ReadTokens(0, n).nll));
    CHECK(m.ReadTokens(0, n).doc == w.ReadTokens(0, n).doc);
    CHECK(m.ReadRouting(0, n).ids == w.ReadRouting(0, n).ids);
    CHECK(SameBits(m.ReadRouting(0, n).weights, w.ReadRouting(0, n).weights));
    CHECK(m.ReadStats().load() == w.ReadStats().load());
    CHECK(std::equal(m.logit_tokens().begin(), m.logit_tokens().end(), w.logit_tokens().begin(),
                     w.logit_tokens().end()));
  }
  // h5py alone reads it, from another working folder (the shards are found next to the file).
  const auto check = RunCommand(
      "cd / && " + std::string("/usr/bin/python3 ") + Quote(trace_test::Checker().string()) + " " +
      Quote(merged.string()) + " " + Quote(trace_test::FormatDoc().string()));
  INFO(check.output);
  CHECK(check.status == 0);
  // stats: the same numbers as over the single-process trace.
  const auto s1 = RunCommand(Cli("stats " + Quote(whole.string()) + " -o " +
                                 Quote((dir / "stats_whole").string()) + " --bootstrap 50"));
  const auto s2 = RunCommand(Cli("stats " + Quote(merged.string()) + " -o " +
                                 Quote((dir / "stats_merged").string()) + " --bootstrap 50"));
  INFO(s1.output << s2.output);
  REQUIRE(s1.status == 0);
  REQUIRE(s2.status == 0);
  CHECK(trace_test::ReadText(dir / "stats_whole/stats.csv") ==
        trace_test::ReadText(dir / "stats_merged/stats.csv"));
  const auto c = RunCommand(Cli("compare " + Quote(whole.string()) + " " + Quote(merged.string())));
  INFO(c.output);
  CHECK(c.status == 0);
}

TEST_CASE("moescope merge refuses missing, incomplete and mismatched shards in one line",
          "[distributed][merge][cli][bad-input]") {
  const auto dir = TempDir("dist_merge_bad");
  const std::string common =
      "trace --model " + Quote(trace_test::TinyModel().string()) + " --batch-size 4";
  auto trace = [&](const std::string& extra, const std::filesystem::path& out) {
    const auto r = RunCommand(Cli(common + " --corpus " + Quote(CorpusPart(dir, 0, 3).string()) +
                                  " -o " + Quote(out.string()) + " " + extra));
    INFO(r.output);
    REQUIRE(r.status == 0);
  };
  const auto a = dir / "a.h5", b = dir / "b.h5", policy = dir / "policy.h5",
             logits = dir / "logits.h5", out = dir / "out.h5";
  trace("", a);
  trace("", b);
  trace("--disable 0:1", policy);
  trace("--record-logits", logits);
  auto merge = [&](const std::vector<std::filesystem::path>& shards) {
    std::string args = "merge";
    // append(), not operator+: GCC 12 warns falsely (-Wrestrict) on " " + std::string temporaries.
    for (const auto& s : shards) args.append(" ").append(Quote(s.string()));
    return RunCommand(Cli(args.append(" -o ").append(Quote(out.string()))));
  };
  auto one_line_error = [&](const trace_test::CommandResult& r, const std::string& file,
                            const std::string& what) {
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    CHECK_THAT(r.output, Catch::StartsWith("moescope: error: " + file) && Catch::Contains(what));
    CHECK_FALSE(std::filesystem::exists(out));
  };
  one_line_error(merge({a, dir / "missing.h5"}), (dir / "missing.h5").string(), "does not exist");
  {
    std::ofstream(dir / "junk.h5") << "not a trace";
    one_line_error(merge({a, dir / "junk.h5"}), (dir / "junk.h5").string(), "not an HDF5 file");
  }
  one_line_error(merge({a, policy}), policy.string(), "routing policy differs");
  one_line_error(merge({a, logits}), logits.string(), "--record-logits");
  {
    // Another model: the tiny model with one config value changed.
    const auto model = dir / "model";
    std::filesystem::copy(trace_test::TinyModel(), model);
    nlohmann::json config = nlohmann::json::parse(trace_test::ReadText(model / "config.json"));
    config["initializer_range"] = 0.0123;
    std::ofstream(model / "config.json") << config.dump();
    const auto other = dir / "other.h5";
    const auto r =
        RunCommand(Cli("trace --model " + Quote(model.string()) + " --corpus " +
                       Quote(CorpusPart(dir, 0, 3).string()) + " -o " + Quote(other.string())));
    INFO(r.output);
    REQUIRE(r.status == 0);
    one_line_error(merge({a, other}), other.string(), "model config differs");
  }
  {
    const auto cut = dir / "cut.h5";
    std::filesystem::copy_file(b, cut);
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(cut.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    h5::WriteFlag(f.id(), trace::attr::kComplete, false, {cut.string(), "/"});
    f = h5::Handle();
    one_line_error(merge({a, cut}), cut.string(), "is incomplete");
  }
  one_line_error(merge({a, out, b}), out.string(), "does not exist");
  const auto self = RunCommand(Cli("merge " + Quote(a.string()) + " -o " + Quote(a.string())));
  CHECK(self.status == 1);
  CHECK_THAT(self.output, Catch::Contains("is one of the shards"));
  CHECK(TraceReader(a).info().complete);
}

#ifdef MOESCOPE_TEST_MPIRUN
namespace {

std::string Mpirun(int ranks, const std::string& args) {
  return std::string(MOESCOPE_TEST_MPIRUN) + " --allow-run-as-root --oversubscribe -np " +
         std::to_string(ranks) + " " + Cli(args);
}

std::string TraceArgs(const std::filesystem::path& out) {
  return "trace --model " + Quote(trace_test::TinyModel().string()) + " --corpus " +
         Quote(trace_test::TinyCorpus().string()) +
         " --batch-size 1 --record-logits --logit-sample-rate 0.5 --threads 1 -o " +
         Quote(out.string());
}

}  // namespace

TEST_CASE("mpirun -np N moescope trace equals the single-process trace", "[distributed][mpi]") {
  const auto dir = TempDir("dist_mpi_trace");
  const auto whole = dir / "whole.h5";
  {
    const auto r = RunCommand(Cli(TraceArgs(whole)));
    INFO(r.output);
    REQUIRE(r.status == 0);
  }
  for (int ranks : {1, 2, 3}) {
    DYNAMIC_SECTION(ranks << " ranks") {
      const auto out = dir / ("mpi" + std::to_string(ranks) + ".h5");
      const auto r = RunCommand(Mpirun(ranks, TraceArgs(out)));
      INFO(r.output);
      REQUIRE(r.status == 0);
      CHECK_THAT(r.output, Catch::Contains("traced 10 documents") &&
                               Catch::Contains("on " + std::to_string(ranks) + " rank"));
      for (int k = 0; k < ranks; ++k)
        CHECK(TraceReader(distributed::ShardPath(out, k)).info().complete);
      CheckIdentical(whole, out);

      // --resume of a finished run: nothing to trace, the same trace again.
      const auto again = RunCommand(Mpirun(ranks, TraceArgs(out) + " --resume"));
      INFO(again.output);
      CHECK(again.status == 0);
      CheckIdentical(whole, out);
    }
  }
}

TEST_CASE("mpirun trace --resume completes interrupted shards to the identical trace",
          "[distributed][mpi][resume]") {
  const auto dir = TempDir("dist_mpi_resume");
  const auto whole = dir / "whole.h5", out = dir / "out.h5";
  REQUIRE(RunCommand(Cli(TraceArgs(whole))).status == 0);
  REQUIRE(RunCommand(Mpirun(2, TraceArgs(out))).status == 0);
  // Rank 1's shard as a kill leaves it: only its first document committed, rows after it debris.
  const auto shard = distributed::ShardPath(out, 1);
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    h5::WriteFlag(f.id(), trace::attr::kComplete, false, {shard.string(), "/"});
    h5::Handle offset = h5::OpenDataset(f.id(), trace::ds::kDocOffset, {shard.string(), "offset"});
    h5::SetRows(offset.id(), 2, {shard.string(), "offset"});
  }
  std::filesystem::remove(out);
  const auto r = RunCommand(Mpirun(2, TraceArgs(out) + " --resume"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CheckIdentical(whole, out);
}

TEST_CASE("mpirun trace: a killed rank stops the others cleanly and --resume finishes identically",
          "[distributed][mpi][resume]") {
  const auto dir = TempDir("dist_mpi_kill");
  const auto corpus = dir / "corpus.jsonl";
  trace_test::WriteLicenseCorpus(corpus, 360);
  const auto whole = dir / "whole.h5", out = dir / "out.h5";
  const std::string args = "trace --model " + Quote(trace_test::TinyModel().string()) +
                           " --corpus " + Quote(corpus.string()) +
                           " --batch-size 1 --commit-tokens 64 --threads 1 -o ";
  REQUIRE(RunCommand(Cli(args + Quote(whole.string()))).status == 0);
  // Rank 1 runs moescope in the background and SIGKILLs it 0.3 s after its shard appears: the
  // shard is then past its creation (a trace file killed while HDF5 creates it holds nothing
  // and is not a trace), and mid-way through its 120 documents, which take about 1 s on an idle
  // machine of this kind (3x the margin); mpirun then ends the job.
  const auto script = dir / "rank.sh";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\n"
      << "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then\n"
      << "  \"$@\" & pid=$!\n"
      << "  for i in $(seq 1 1000); do [ -f " << Quote(distributed::ShardPath(out, 1).string())
      << " ] && break; sleep 0.01; done\n"
      << "  sleep 0.3; kill -9 $pid; exit 9\n"
      << "fi\n"
      << "exec \"$@\"\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  const auto killed =
      RunCommand(std::string(MOESCOPE_TEST_MPIRUN) + " --allow-run-as-root --oversubscribe -np 3 " +
                 Quote(script.string()) + " " + Cli(args + Quote(out.string())));
  INFO(killed.output);
  CHECK(killed.status != 0);
  CHECK_FALSE(std::filesystem::exists(out));
  {
    // Closed before the resume: HDF5 shares an open file within a process, and the merged
    // trace's virtual datasets would see this reader's stale view of the shard.
    const TraceReader cut(distributed::ShardPath(out, 1));
    CHECK_FALSE(cut.info().complete);
  }
  const auto resumed = RunCommand(Mpirun(3, args + Quote(out.string()) + " --resume"));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CheckIdentical(whole, out);
}

TEST_CASE("mpirun trace refuses ranks started differently, and a broken rank stops all",
          "[distributed][mpi]") {
  const auto dir = TempDir("dist_mpi_bad");
  const auto out = dir / "out.h5";
  const std::string mpirun =
      std::string(MOESCOPE_TEST_MPIRUN) + " --allow-run-as-root --oversubscribe";
  // MPMD: rank 1 gets another policy.
  auto r = RunCommand(mpirun + " -np 1 " + Cli(TraceArgs(out)) + " : -np 1 " +
                      Cli(TraceArgs(out) + " --disable 0:1"));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("rank 1 was started with different arguments"));
  CHECK_FALSE(std::filesystem::exists(out));
  CHECK_FALSE(std::filesystem::exists(distributed::ShardPath(out, 0)));
  // Rank 1 cannot read its corpus: it says so, the others stop without tracing.
  const auto missing = dir / "broken.jsonl";
  std::ofstream(missing) << "{\"domain\": \"a\"}\n";
  r = RunCommand(mpirun + " -np 1 " + Cli(TraceArgs(out)) + " : -np 1 " +
                 Cli("trace --model " + Quote(trace_test::TinyModel().string()) + " --corpus " +
                     Quote(missing.string()) + " -o " + Quote(out.string())));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("rank 1: ") && Catch::Contains("broken.jsonl:1") &&
                           Catch::Contains("rank 1 could not start"));
  CHECK_FALSE(std::filesystem::exists(out));
}
TEST_CASE("mpirun -np N moescope stats gives the numbers of one process", "[distributed][mpi]") {
  const auto dir = TempDir("dist_mpi_stats");
  const auto corpus = dir / "corpus.jsonl";
  trace_test::WriteLicenseCorpus(corpus, 24);
  // Two traces (statistics number documents over both, in order), with logits and predictions.
  const std::string common = "trace --model " + Quote(trace_test::TinyModel().string()) +
                             " --record-logits --logit-sample-rate 0.5 --threads 1 -o ";
  const auto a = dir / "a.h5", b = dir / "b.h5";
  REQUIRE(
      RunCommand(Cli(common + Quote(a.string()) + " --corpus " + Quote(corpus.string()))).status ==
      0);
  REQUIRE(RunCommand(Cli(common + Quote(b.string()) + " --corpus " +
                         Quote(trace_test::TinyCorpus().string())))
              .status == 0);
  const std::string args = "stats " + Quote(a.string()) + " " + Quote(b.string()) +
                           " --bootstrap 40 --permutations 30 --min-token-count 2 -o ";
  const auto one = RunCommand(Cli(args + Quote((dir / "one").string())));
  INFO(one.output);
  REQUIRE(one.status == 0);
  const std::string want = trace_test::ReadText(dir / "one/stats.csv");
  REQUIRE(!want.empty());
  for (int ranks : {1, 2, 3}) {
    DYNAMIC_SECTION(ranks << " ranks") {
      const auto out = dir / ("mpi" + std::to_string(ranks));
      const auto r = RunCommand(Mpirun(ranks, args + Quote(out.string())));
      INFO(r.output);
      REQUIRE(r.status == 0);
      CHECK_THAT(r.output, Catch::Contains("on " + std::to_string(ranks) + " ranks"));
      // Counts exactly; sums of doubles added in another order to their last bits.
      CheckSameCsv(dir / "one/stats.csv", out / "stats.csv", 1e-9);
      for (const char* exact : {"coactivation.csv", "transitions.csv", "histograms.csv"})
        CHECK(trace_test::ReadText(out / exact) == trace_test::ReadText(dir / "one" / exact));
    }
  }
}

#endif
