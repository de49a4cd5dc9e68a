// `moescope trace` from the command line: help, flags, the one-line summary, and bad input as a
// one-line error without a partial trace file.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/trace/trace_reader.h"
#include "trace_test_util.h"

using trace_test::Quote;
using trace_test::RunCommand;

namespace {

std::string Trace(const std::string& args) {
  return Quote(trace_test::Cli()) + " trace --model " + Quote(trace_test::TinyModel().string()) +
         " " + args;
}

}  // namespace

TEST_CASE("moescope trace --help lists its options", "[trace][cli]") {
  const auto r = RunCommand(Quote(trace_test::Cli()) + " trace --help");
  CHECK(r.status == 0);
  for (const char* flag : {"--corpus", "--output", "--domain", "--batch-size", "--record-logits",
                           "--logit-sample-rate", "--resume", "--policy", "--disable", "--mode",
                           "--top-k", "--top-r", "--max-window", "--window-stride"})
    CHECK_THAT(r.output, Catch::Contains(flag));
}

TEST_CASE("moescope trace writes a trace and one summary line", "[trace][cli]") {
  const auto out = TempDir("trace_cli") / "t.h5";
  const auto r =
      RunCommand(Trace("--corpus " + Quote(trace_test::TinyCorpus().string()) + " -o " +
                       Quote(out.string()) + " --disable 0:3 --mode drop --top-k '*:1'"));
  INFO(r.output);
  CHECK(r.status == 0);
  // Not a terminal: no progress bar, exactly the summary line.
  CHECK(r.output.find('\r') == std::string::npos);
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  CHECK_THAT(r.output, Catch::StartsWith("traced 10 documents") && Catch::Contains(out.string()));
  const moe::TraceReader t(out);
  const nlohmann::json policy = nlohmann::json::parse(t.info().routing_policy);
  CHECK(policy["mode"] == "drop");
  CHECK(policy["disable"] == nlohmann::json::parse("[[0, 3]]"));
  CHECK(policy["top_k"] == nlohmann::json::parse(R"({"0": 1, "1": 1})"));
}

TEST_CASE("bad input is a one-line error and leaves no trace file", "[trace][cli]") {
  const auto dir = TempDir("trace_cli_bad");
  const auto corpus = dir / "bad.jsonl";
  std::ofstream(corpus) << R"({"domain": "a", "text": "fine"})"
                        << "\n"
                        << R"({"domain": "a"})"
                        << "\n";
  const auto out = dir / "t.h5";
  auto r = RunCommand(Trace("--corpus " + Quote(corpus.string()) + " -o " + Quote(out.string())));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::StartsWith("moescope: error: ") && Catch::Contains("bad.jsonl:2") &&
                           Catch::Contains("\"text\""));
  CHECK_FALSE(std::filesystem::exists(out));
  r = RunCommand(Trace("--corpus " + Quote(trace_test::TinyCorpus().string()) + " -o " +
                       Quote(out.string()) + " --disable 9:1"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("layer 9"));
  r = RunCommand(Trace("--corpus " + Quote(trace_test::TinyCorpus().string()) + " -o " +
                       Quote(out.string()) + " --only-domains legal,poetry"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("poetry"));
  CHECK_FALSE(std::filesystem::exists(out));
}
