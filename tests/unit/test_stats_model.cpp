// `moescope stats` on a real trace of the bundled model, cross-checked by an independent numpy
// computation (tests/python/check_stats.py, h5py only).
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/stats/metrics.h"
#include "analysis/trace/trace_reader.h"
#include "trace_test_util.h"

using trace_test::Cli;
using trace_test::Quote;
using trace_test::RunCommand;

TEST_CASE("moescope stats on a trace of the bundled model matches numpy", "[stats][cli]") {
  const auto dir = TempDir("stats-model");
  const auto trace = dir / "trace.h5";
  const auto out = dir / "stats";
  const auto traced =
      RunCommand(Quote(Cli()) + " trace --corpus " + Quote(trace_test::TinyCorpus().string()) +
                 " -o " + Quote(trace.string()) + " --record-logits --batch-size 4");
  INFO(traced.output);
  REQUIRE(traced.status == 0);
  const auto stats =
      RunCommand(Quote(Cli()) + " stats " + Quote(trace.string()) + " -o " + Quote(out.string()) +
                 " --bootstrap 4000 --permutations 20 --min-documents 2");
  INFO(stats.output);
  REQUIRE(stats.status == 0);
  CHECK_THAT(stats.output, Catch::Contains("stats over 1 trace"));
  for (const char* f : {"stats.h5", "stats.csv", "stats.json", "coactivation.csv",
                        "transitions.csv", "histograms.csv", "top_tokens.csv"})
    CHECK(std::filesystem::exists(out / f));

  const std::string py = std::string(MOESCOPE_SOURCE_DIR) + "/tests/python/check_stats.py";
  const auto check = RunCommand("/usr/bin/python3 " + Quote(py) + " " + Quote(trace.string()) +
                                " " + Quote(out.string()));
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK_THAT(check.output, Catch::Contains("OK check_stats.py"));

  // stats.json: tidy rows; the trace's own /stats/load agrees with load_count.
  std::ifstream in(out / "stats.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  CHECK(j["format"] == "moescope-stats");
  const moe::TraceReader reader(trace);
  const moe::ExpertStats s = reader.ReadStats();
  const int L = reader.info().num_layers, E = reader.info().num_experts;
  const int M = static_cast<int>(reader.domains().size());
  // The metrics listed in output order; every row names one of them (parsed once, here).
  REQUIRE(j["metrics"].size() == moe::kMetricCount);
  for (size_t i = 0; i < moe::kMetricCount; ++i)
    CHECK(j["metrics"][i]["name"] == moe::RoutingMetricDefs()[i].name);
  int matched = 0;
  for (const auto& row : j["rows"]) {
    const moe::Metric metric = moe::ParseMetricName(row["metric"].get<std::string>(), "stats.json");
    if (metric != moe::Metric::kLoadCount || row["domain"] != "all") continue;
    const int l = row["layer"], e = row["expert"];
    CHECK(row["value"].get<double>() == s.load()[(static_cast<size_t>(M) * L + l) * E + e]);
    CHECK(row["ci_low"].get<double>() <= row["value"].get<double>() + 1e-9);
    ++matched;
  }
  CHECK(matched == L * E);
}

TEST_CASE("moescope stats reports missing logits and bad arguments", "[stats][cli]") {
  const auto dir = TempDir("stats-cli");
  const auto trace = dir / "trace.h5";
  REQUIRE(RunCommand(Quote(Cli()) + " trace --corpus " + Quote(trace_test::TinyCorpus().string()) +
                     " -o " + Quote(trace.string()))
              .status == 0);
  const auto stats = RunCommand(Quote(Cli()) + " stats " + Quote(trace.string()) + " -o " +
                                Quote((dir / "s").string()) + " --bootstrap 0 --permutations 0");
  INFO(stats.output);
  CHECK(stats.status == 0);
  CHECK_THAT(stats.output, Catch::Contains("no router logits"));
  const auto bad = RunCommand(Quote(Cli()) + " stats " + Quote((dir / "s/stats.csv").string()) +
                              " -o " + Quote((dir / "t").string()));
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Catch::Contains("stats.csv") && Catch::Contains("not an HDF5"));
}
