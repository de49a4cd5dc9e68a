// Write failures injected into moescope processes (tests/fault/write_fault.c, loaded with
// LD_PRELOAD): after a byte budget every write to the output fails with ENOSPC or EIO, as on a
// full disk or a broken device. Whatever the budget, the command exits 1 with one line naming the
// file and the reason; what it committed stays readable and resumes to exactly the uninterrupted
// result; and nothing that looks whole is half-written.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "analysis/ablation/ablation_file.h"
#include "analysis/trace/trace_reader.h"
#include "trace_compare.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::Quote;
namespace fs = std::filesystem;

namespace {

struct Fault {
  const char* errno_name;  // ENOSPC or EIO
  const char* mode;        // "all": every later write fails; "grow": only writes that grow a file
  const char* message;     // what strerror says for it
};
constexpr Fault kFaults[] = {{"ENOSPC", "all", "No space left on device"},
                             {"ENOSPC", "grow", "No space left on device"},
                             {"EIO", "all", "Input/output error"}};

std::string Moescope(const std::vector<std::string>& args) {
  std::string cmd = Quote(trace_test::Cli());
  for (const std::string& a : args) cmd.append(" ").append(Quote(a));
  return cmd;
}

// The command with writes to paths containing `target` failing after `budget` bytes.
std::string WithFault(const std::string& command, const fs::path& target, int64_t budget,
                      const Fault& fault) {
  // verify_asan_link_order=0: under AddressSanitizer the shim is preloaded ahead of its runtime.
  return "ASAN_OPTIONS=\"$ASAN_OPTIONS:verify_asan_link_order=0\" LD_PRELOAD=" +
         Quote(MOESCOPE_WRITE_FAULT) + " MOESCOPE_FAULT_PATH=" + Quote(target.string()) +
         " MOESCOPE_FAULT_AFTER_BYTES=" + std::to_string(budget) +
         " MOESCOPE_FAULT_ERRNO=" + fault.errno_name + " MOESCOPE_FAULT_MODE=" + fault.mode + " " +
         command;
}

// Budgets spread over the uninterrupted output's size (writers rewrite some bytes, so the last
// ones may let a run finish).
std::vector<int64_t> Budgets(const fs::path& whole) {
  const auto size = static_cast<int64_t>(fs::file_size(whole));
  return {0, 1000, size / 20, size / 5, size / 2, size * 4 / 5, size * 19 / 20};
}

// A failed run said why on one line, naming `path`.
void CheckOneLineError(const trace_test::CommandResult& r, const fs::path& path,
                       const Fault& fault) {
  CHECK(r.status == 1);
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  CHECK_THAT(r.output, Catch::StartsWith("moescope: error: ") && Catch::Contains(path.string()) &&
                           Catch::Contains(fault.message));
}

// Temporaries are cleaned up after a failure.
void CheckNoTemporaries(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

std::vector<std::string> TraceArgs(const fs::path& corpus, const fs::path& out) {
  return {"trace",
          "--model",
          trace_test::TinyModel().string(),
          "--corpus",
          corpus.string(),
          "--output",
          out.string(),
          "--commit-tokens",
          "512",
          "--record-logits",
          "--logit-sample-rate",
          "0.3"};
}

}  // namespace

TEST_CASE("a trace that hits a full disk or a write error keeps its committed prefix",
          "[fault][trace]") {
  const fs::path dir = TempDir("fault_trace");
  const fs::path corpus = dir / "licenses.jsonl";
  trace_test::WriteLicenseCorpus(corpus, 60);
  const fs::path reference = dir / "reference.h5";
  const trace_test::CommandResult ref =
      trace_test::RunCommand(Moescope(TraceArgs(corpus, reference)));
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  const TraceReader want(reference);

  for (const Fault& fault : kFaults)
    for (const int64_t budget : Budgets(reference)) {
      INFO(fault.errno_name << " (" << fault.mode << ") after " << budget << " bytes");
      const fs::path out = dir / ("faulted-" + std::string(fault.errno_name) + "-" + fault.mode +
                                  "-" + std::to_string(budget) + ".h5");
      const trace_test::CommandResult r =
          trace_test::RunCommand(WithFault(Moescope(TraceArgs(corpus, out)), out, budget, fault));
      INFO(r.output);
      if (r.status == 0) {  // the budget sufficed
        trace_test::CheckSameTrace(reference, out);
        continue;
      }
      CheckOneLineError(r, out, fault);
      if (fs::exists(out)) {
        // The committed prefix reads back exactly as the uninterrupted run wrote it, logits
        // included.
        const TraceReader got(out);
        CHECK_FALSE(got.info().complete);
        const int64_t n = got.num_tokens();
        CHECK(got.ReadTokens(0, n).id == want.ReadTokens(0, n).id);
        CHECK(got.ReadRouting(0, n).ids == want.ReadRouting(0, n).ids);
        const int64_t rows = got.num_logit_rows();
        REQUIRE(rows <= want.num_logit_rows());
        CHECK(got.ReadRouterLogits(0, rows).logits == want.ReadRouterLogits(0, rows).logits);
        const trace_test::CommandResult stats =
            trace_test::RunCommand(Moescope({"stats", out.string(), "-o", (dir / "stats").string(),
                                             "--permutations", "20", "--bootstrap", "20"}));
        INFO(stats.output);
        if (got.num_documents() > 0) {
          CHECK(stats.status == 0);
        } else {  // nothing committed yet: a clean error, not an empty report
          CHECK(stats.status == 1);
          CHECK_THAT(stats.output, Catch::Contains(out.string() + ": has no committed documents"));
        }
      }
      std::vector<std::string> resume = TraceArgs(corpus, out);
      resume.push_back("--resume");
      const trace_test::CommandResult resumed =
          trace_test::RunCommand(Moescope(fs::exists(out) ? resume : TraceArgs(corpus, out)));
      INFO(resumed.output);
      REQUIRE(resumed.status == 0);
      trace_test::CheckSameTrace(reference, out);
    }
  CheckNoTemporaries(dir);
}

TEST_CASE("an ablation sweep that hits a full disk resumes to the uninterrupted results",
          "[fault][ablate]") {
  const fs::path dir = TempDir("fault_ablate");
  const fs::path corpus = dir / "licenses.jsonl";
  trace_test::WriteLicenseCorpus(corpus, 12);
  auto sweep = [&](const fs::path& out) {
    return std::vector<std::string>{"ablate",
                                    "--model",
                                    trace_test::TinyModel().string(),
                                    "--corpus",
                                    corpus.string(),
                                    "--single-experts",
                                    "--layers",
                                    "1",
                                    "--mode",
                                    "drop",
                                    "--bootstrap",
                                    "20",
                                    "-o",
                                    out.string()};
  };
  const fs::path reference = dir / "reference.h5";
  const trace_test::CommandResult ref = trace_test::RunCommand(Moescope(sweep(reference)));
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  const std::vector<AblationResult> want = AblationFile::Read(reference);
  const std::string want_csv = trace_test::ReadText(dir / "reference.csv");

  for (const Fault& fault : kFaults)
    for (const int64_t budget : Budgets(reference)) {
      INFO(fault.errno_name << " (" << fault.mode << ") after " << budget << " bytes");
      const std::string name = "faulted-" + std::string(fault.errno_name) + "-" + fault.mode + "-" +
                               std::to_string(budget);
      const fs::path out = dir / (name + ".h5"), csv = dir / (name + ".csv");
      // The fault covers the results file and its CSV.
      const trace_test::CommandResult r =
          trace_test::RunCommand(WithFault(Moescope(sweep(out)), dir / name, budget, fault));
      INFO(r.output);
      if (r.status != 0) {
        CheckOneLineError(r, out.string().substr(0, out.string().size() - 3), fault);
        CHECK((!fs::exists(csv) || trace_test::ReadText(csv) == want_csv));
      }
      std::vector<std::string> resume = sweep(out);
      resume.push_back("--resume");
      const trace_test::CommandResult resumed = trace_test::RunCommand(Moescope(resume));
      INFO(resumed.output);
      REQUIRE(resumed.status == 0);
      const std::vector<AblationResult> got = AblationFile::Read(out);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        CHECK(got[i].name == want[i].name);
        CHECK(got[i].delta_nll == want[i].delta_nll);
        CHECK(got[i].domains.back().delta_nll.value == want[i].domains.back().delta_nll.value);
      }
      CHECK(trace_test::ReadText(csv) == want_csv);
    }
  CheckNoTemporaries(dir);
}

TEST_CASE("convert that hits a full disk leaves no half-written file", "[fault][convert]") {
  const fs::path dir = TempDir("fault_convert");
  const fs::path in = FixtureDir() / "torch_bin" / "sharded";
  const fs::path reference = dir / "reference";
  const trace_test::CommandResult ref =
      trace_test::RunCommand(Moescope({"convert", in.string(), reference.string()}));
  INFO(ref.output);
  REQUIRE(ref.status == 0);

  for (const Fault& fault : kFaults)
    for (const int64_t budget : Budgets(reference / "model.safetensors")) {
      INFO(fault.errno_name << " (" << fault.mode << ") after " << budget << " bytes");
      const fs::path out = dir / ("faulted-" + std::string(fault.errno_name) + "-" + fault.mode +
                                  "-" + std::to_string(budget));
      const trace_test::CommandResult r = trace_test::RunCommand(
          WithFault(Moescope({"convert", in.string(), out.string()}), out, budget, fault));
      INFO(r.output);
      if (r.status != 0) CheckOneLineError(r, out, fault);
      // Every file there is whole: byte for byte the uninterrupted conversion's.
      if (fs::exists(out))
        for (const auto& e : fs::directory_iterator(out)) {
          INFO(e.path().string());
          CHECK(trace_test::ReadText(e.path()) ==
                trace_test::ReadText(reference / e.path().filename()));
        }
    }
  CheckNoTemporaries(dir);
}
