// The trace file itself: docs/trace-format.md, analysis/trace/trace_format.h and a written file
// agree; h5py alone reads what the C++ reader reads; damaged or foreign files are clean errors.
#include <hdf5.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "analysis/common/float16.h"
#include "analysis/common/hdf5_util.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/routing_compare.h"
#include "analysis/stats/stats_job.h"
#include "analysis/stats/trace_load.h"
#include "analysis/stats/trace_scan.h"
#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

const LoadedModel& Model() {
  static const LoadedModel m = LoadModel(trace_test::TinyModel());
  return m;
}

// A finished trace of the tiny corpus with sampled logits, made once per test process.
std::filesystem::path TinyTrace() {
  static const std::filesystem::path path = [] {
    const auto out = TempDir("trace_format") / "tiny.h5";
    TraceOptions o = trace_test::TinyOptions(out);
    o.run.record_logits = true;
    o.run.logit_sample_rate = 0.5;
    RunTrace(Model(), PolicyFromFlags("1:2", "drop", "", "", Model().config()), o);
    return out;
  }();
  return path;
}

// Names in the first column of the markdown tables: attributes and /datasets.
std::pair<std::set<std::string>, std::set<std::string>> DocumentedNames() {
  std::ifstream in(trace_test::FormatDoc());
  REQUIRE(in);
  std::set<std::string> attrs, datasets;
  const std::regex row(R"(^\| `([^`]+)` \|)");
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, row)) (m[1].str()[0] == '/' ? datasets : attrs).insert(m[1]);
  return {attrs, datasets};
}

herr_t CollectDataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET)
    static_cast<std::set<std::string>*>(data)->insert(std::string("/") + name);
  return 0;
}

std::filesystem::path CopyTo(const std::filesystem::path& from, const std::string& dir,
                             const std::string& name) {
  const auto to = TempDir(dir) / name;
  std::filesystem::copy_file(from, to);
  return to;
}

}  // namespace

TEST_CASE("docs/trace-format.md, trace_format.h and a written trace agree", "[trace][format]") {
  const auto [doc_attrs, doc_datasets] = DocumentedNames();
  const std::set<std::string> code_attrs(trace::kRootAttributes.begin(),
                                         trace::kRootAttributes.end());
  std::set<std::string> code_datasets(trace::kRequiredDatasets.begin(),
                                      trace::kRequiredDatasets.end());
  code_datasets.insert(trace::kLogitDatasets.begin(), trace::kLogitDatasets.end());
  code_datasets.insert(trace::kOptionalDatasets.begin(), trace::kOptionalDatasets.end());
  CHECK(doc_attrs == code_attrs);
  CHECK(doc_datasets == code_datasets);

  h5::SilenceErrors();
  const hid_t f = H5Fopen(TinyTrace().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const auto names = h5::AttributeNames(f, {TinyTrace().string(), "/"});
  CHECK(std::set<std::string>(names.begin(), names.end()) == code_attrs);
  std::set<std::string> in_file;
  H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, CollectDataset, &in_file);
  // The tiny model has no shared expert, so its trace has no /routing/shared_gate
  // (test_families.cpp checks that dataset on a model with one).
  std::set<std::string> expected_in_file = code_datasets;
  expected_in_file.erase(trace::ds::kSharedGate);
  CHECK(in_file == expected_in_file);
  H5Fclose(f);
}

TEST_CASE("h5py alone reads what the C++ reader reads", "[trace][format][python]") {
  const TraceReader r(TinyTrace());
  nlohmann::json expected;
  expected["attrs"] = {{"num_layers", r.info().num_layers},
                       {"num_experts", r.info().num_experts},
                       {"top_k", r.info().top_k},
                       {"format_version", r.info().format_version},
                       {"complete", 1},
                       {"record_logits", 1},
                       {"logit_sample_rate", r.info().logit_sample_rate},
                       {"score_scale_factor", r.info().score_scale_factor},
                       {"routing_policy", r.info().routing_policy},
                       {"corpus_sha256", r.info().corpus_sha256},
                       {"engine_version", MOESCOPE_VERSION}};
  expected["documents"] = r.num_documents();
  expected["tokens"] = r.num_tokens();
  expected["domains"] = r.domains();
  expected["source_ids"] = r.SourceIds(0, r.num_documents());
  for (int64_t t : {int64_t{0}, int64_t{300}, r.num_tokens() - 1}) {
    const TokenRows tok = r.ReadTokens(t, 1);
    const RoutingRows rt = r.ReadRouting(t, 1);
    nlohmann::json ids = nlohmann::json::array(), weights = nlohmann::json::array();
    for (int l = 0; l < rt.layers; ++l) {
      ids.push_back(std::vector<int>(rt.Ids(0, l).begin(), rt.Ids(0, l).end()));
      weights.push_back(std::vector<float>(rt.Weights(0, l).begin(), rt.Weights(0, l).end()));
    }
    expected["token_rows"].push_back({{"row", t},
                                      {"id", tok.id[0]},
                                      {"position", tok.position[0]},
                                      {"doc", tok.doc[0]},
                                      {"predicted", tok.predicted.at(0)},
                                      {"topk_ids", ids},
                                      {"topk_weights", weights}});
  }
  REQUIRE(r.num_logit_rows() > 10);
  for (int64_t row : {int64_t{0}, int64_t{7}, r.num_logit_rows() - 1}) {
    const LogitRows lr = r.ReadRouterLogits(row, 1);
    nlohmann::json logits = nlohmann::json::array();
    for (int l = 0; l < lr.layers; ++l)
      logits.push_back(std::vector<float>(lr.Logits(0, l).begin(), lr.Logits(0, l).end()));
    expected["logit_rows"].push_back({{"row", row}, {"token", lr.token[0]}, {"logits", logits}});
  }
  // Our float16 rounding against numpy's, on values across the whole range.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-30.0f, 17.0f);
  for (int i = 0; i < 5000; ++i) {
    const float x = (i % 2 ? -1.0f : 1.0f) * std::exp2(exponent(rng));
    expected["float16_cases"].push_back({x, FloatToHalf(x)});
  }
  expected["load"] = nlohmann::json::array();
  const ExpertStats stats = r.ReadStats();
  const int L = r.info().num_layers, E = r.info().num_experts;
  for (size_t m = 0; m <= r.domains().size(); ++m) {
    nlohmann::json layers = nlohmann::json::array();
    for (int l = 0; l < L; ++l)
      layers.push_back(std::vector<int64_t>(stats.load().begin() + (m * L + l) * E,
                                            stats.load().begin() + (m * L + l + 1) * E));
    expected["load"].push_back(layers);
  }
  const auto expected_file = TempDir("trace_python") / "expected.json";
  std::ofstream(expected_file) << expected.dump();
  const trace_test::CommandResult py = trace_test::RunChecker(TinyTrace(), expected_file);
  INFO("python check (/usr/bin/python3 + h5py) said:\n" << py.output);
  CHECK(py.status == 0);
  CHECK_THAT(py.output, Catch::Contains("OK"));
}

TEST_CASE("damaged and foreign files are errors naming the file", "[trace][format]") {
  SECTION("missing") {
    const auto p = TempDir("trace_bad") / "none.h5";
    CHECK_THROWS_WITH(TraceReader(p),
                      Catch::Contains(p.string()) && Catch::Contains("does not exist"));
  }
  SECTION("not HDF5") {
    const auto p = TempDir("trace_bad") / "garbage.h5";
    std::ofstream(p) << std::string(4096, 'x');
    CHECK_THROWS_WITH(TraceReader(p),
                      Catch::Contains(p.string()) && Catch::Contains("not an HDF5 file"));
  }
  SECTION("truncated at several lengths") {
    const auto size = std::filesystem::file_size(TinyTrace());
    for (double fraction : {0.1, 0.5, 0.9, 0.99}) {
      const auto p = CopyTo(TinyTrace(), "trace_bad", "cut.h5");
      std::filesystem::resize_file(p, static_cast<uintmax_t>(size * fraction));
      INFO("cut to " << fraction << " of " << size << " bytes");
      try {
        const TraceReader r(p);
        // HDF5 may open a file whose metadata survived; reading the data must still fail cleanly.
        (void)r.ReadRouting(0, r.num_tokens());
        (void)r.ReadTokens(0, r.num_tokens());
        FAIL("a truncated trace was read without an error");
      } catch (const moe::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains(p.string()));
      }
    }
  }
  SECTION("bytes overwritten in the middle") {
    const auto p = CopyTo(TinyTrace(), "trace_bad", "scribbled.h5");
    {
      std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(p) / 2));
      const std::string junk(2048, '\xAB');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    try {
      const TraceReader r(p);
      (void)r.ReadRouting(0, r.num_tokens());
      (void)r.ReadTokens(0, r.num_tokens());
      (void)r.ReadRouterLogits(0, r.num_logit_rows());
      (void)ComputeDomainLoad(r);
      SUCCEED("the damage hit bytes the reader does not check");  // raw data has no checksum
    } catch (const moe::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(p.string()));
    }
  }
  SECTION("an HDF5 file that is not a trace") {
    const auto p = TempDir("trace_bad") / "other.h5";
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    CHECK_THROWS_WITH(TraceReader(p),
                      Catch::Contains(p.string()) && Catch::Contains("not a moescope trace"));
  }
  SECTION("a newer format_version") {
    const auto p = CopyTo(TinyTrace(), "trace_bad", "v2.h5");
    const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    h5::WriteAttribute(f, trace::attr::kFormatVersion, int64_t{2}, {p.string(), "/"});
    H5Fclose(f);
    CHECK_THROWS_WITH(TraceReader(p), Catch::Contains(p.string()) &&
                                          Catch::Contains("format_version 2") &&
                                          Catch::Contains("upgrade moescope"));
    const trace_test::CommandResult py = trace_test::RunChecker(p);
    CHECK(py.status != 0);  // the Python checker refuses it too
  }
  SECTION("reads outside the committed prefix") {
    const TraceReader r(TinyTrace());
    CHECK_THROWS_WITH(r.ReadTokens(r.num_tokens() - 1, 2),
                      Catch::Contains("outside the committed"));
    CHECK_THROWS_WITH(r.Document(r.num_documents()), Catch::Contains("outside the committed"));
  }
}

TEST_CASE("expert ids outside the trace's experts are an error naming the file",
          "[trace][bad-input]") {
  const auto p = CopyTo(TinyTrace(), "trace_bad_ids", "ids.h5");
  int experts = 0;
  {
    const TraceReader r(p);
    experts = r.info().num_experts;
  }
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    h5::Handle ds = h5::OpenDataset(f.id(), trace::ds::kTopkIds, {p.string(), "ids"});
    h5::Handle space(H5Dget_space(ds.id()));
    const hsize_t start[3] = {2, 1, 0}, one[3] = {1, 1, 1};
    REQUIRE(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start, nullptr, one, nullptr) >= 0);
    h5::Handle mem(H5Screate_simple(3, one, nullptr));
    const int16_t bad = static_cast<int16_t>(experts);  // one past the last expert
    REQUIRE(H5Dwrite(ds.id(), H5T_NATIVE_INT16, mem.id(), space.id(), H5P_DEFAULT, &bad) >= 0);
  }
  const TraceReader r(p);
  CHECK_NOTHROW(r.ReadRouting(0, 2));
  CHECK_THROWS_WITH(r.ReadRouting(0, 3),
                    Catch::Contains(p.string()) && Catch::Contains("token row 2, layer 1") &&
                        Catch::Contains("expert id " + std::to_string(experts)));
  // Every consumer reads through the reader: compare and stats refuse the trace too.
  CHECK_THROWS_WITH(CompareTraces(TinyTrace(), p, {}), Catch::Contains(p.string()));
  CHECK_THROWS_WITH(CompareTraces(p, TinyTrace(), {}), Catch::Contains(p.string()));
}

TEST_CASE("a /tokens/doc that disagrees with /docs/offset is an error naming the file",
          "[trace][bad-input]") {
  const auto p = CopyTo(TinyTrace(), "trace_bad_docs", "docs.h5");
  int64_t second_doc_begin = 0;
  {
    const TraceReader r(p);
    REQUIRE(r.num_documents() > 2);
    second_doc_begin = r.doc_offsets()[1];
  }
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    h5::Handle ds = h5::OpenDataset(f.id(), trace::ds::kTokenDoc, {p.string(), "doc"});
    h5::Handle space(H5Dget_space(ds.id()));
    const hsize_t start[1] = {static_cast<hsize_t>(second_doc_begin)}, one[1] = {1};
    REQUIRE(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start, nullptr, one, nullptr) >= 0);
    h5::Handle mem(H5Screate_simple(1, one, nullptr));
    const int32_t far = 1 << 30;  // a document far outside the trace
    REQUIRE(H5Dwrite(ds.id(), H5T_NATIVE_INT32, mem.id(), space.id(), H5P_DEFAULT, &far) >= 0);
  }
  const TraceReader r(p);
  CHECK_NOTHROW(r.ReadTokens(0, second_doc_begin));
  CHECK_THROWS_WITH(r.ReadTokens(0, second_doc_begin + 1),
                    Catch::Contains(p.string()) &&
                        Catch::Contains("token row " + std::to_string(second_doc_begin)));
  CHECK_THROWS_WITH(r.ReadTokenDocs(second_doc_begin, 1), Catch::Contains("damaged trace"));
  CHECK_THROWS_WITH(CompareTraces(TinyTrace(), p, {}), Catch::Contains(p.string()));
  CHECK_THROWS_WITH(CompareTraces(p, TinyTrace(), {}), Catch::Contains(p.string()));
}

TEST_CASE("a trace with damaged metadata checksums fails to open instead of retrying for minutes",
          "[trace][bad-input]") {
  // Found by fuzz_trace_bytes: HDF5's SWMR reader retried each bad checksum 100 times with
  // doubling sleeps (the reader now allows 24 tries).
  const auto p = std::filesystem::path(MOESCOPE_SOURCE_DIR) /
                 "fuzz/regressions/trace_bytes/swmr-checksum-retries.h5";
  for (const bool swmr : {false, true}) {
    INFO("swmr " << swmr);
    CHECK_THROWS_WITH(TraceReader(p, swmr), Catch::Contains(p.string()));
  }
}

namespace {

// A copy of the tiny trace as an older moescope wrote it: without /tokens/predicted.
std::filesystem::path WithoutPredictions(const std::string& dir) {
  const auto p = CopyTo(TinyTrace(), dir, "old.h5");
  h5::SilenceErrors();
  h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  REQUIRE(f.valid());
  REQUIRE(H5Ldelete(f.id(), trace::ds::kTokenPredicted, H5P_DEFAULT) >= 0);
  return p;
}

// Overwrites /tokens/predicted[row] with `value`.
void WritePredicted(const std::filesystem::path& p, hsize_t row, int32_t value) {
  h5::SilenceErrors();
  h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  REQUIRE(f.valid());
  h5::Handle ds = h5::OpenDataset(f.id(), trace::ds::kTokenPredicted, {p.string(), "predicted"});
  h5::Handle space(H5Dget_space(ds.id()));
  const hsize_t start[1] = {row}, one[1] = {1};
  REQUIRE(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start, nullptr, one, nullptr) >= 0);
  h5::Handle mem(H5Screate_simple(1, one, nullptr));
  REQUIRE(H5Dwrite(ds.id(), H5T_NATIVE_INT32, mem.id(), space.id(), H5P_DEFAULT, &value) >= 0);
}

}  // namespace

TEST_CASE("/tokens/predicted holds the top-1 prediction, -1 exactly where the NLL is NaN",
          "[trace][format]") {
  const TraceReader r(TinyTrace());
  REQUIRE(r.has_predictions());
  CHECK(r.info().format_version == 1);  // an optional dataset keeps the version
  const TokenRows t = r.ReadTokens(0, r.num_tokens());
  REQUIRE(t.predicted.size() == t.id.size());
  for (size_t i = 0; i < t.id.size(); ++i) {
    INFO("token row " << i);
    CHECK((t.predicted[i] == -1) == std::isnan(t.nll[i]));
    CHECK(t.predicted[i] >= -1);
    CHECK(t.predicted[i] < r.vocab_size());
  }
  CHECK(r.vocab_size() == 512);
}

TEST_CASE("a trace without /tokens/predicted (an older moescope) reads and gives statistics",
          "[trace][format][compat]") {
  const auto old = WithoutPredictions("trace_old_predicted");
  {
    const TraceReader r(old);
    CHECK_FALSE(r.has_predictions());
    const TokenRows t = r.ReadTokens(0, r.num_tokens());
    CHECK(t.predicted.empty());
    CHECK(t.id == TraceReader(TinyTrace()).ReadTokens(0, r.num_tokens()).id);
  }
  // The h5py checker accepts it (the dataset is optional).
  const trace_test::CommandResult py = trace_test::RunChecker(old);
  INFO("check_trace.py said:\n" << py.output);
  CHECK(py.status == 0);

  const TraceSetInfo set = InspectTraces({old});
  CHECK_FALSE(set.predictions);
  CHECK(set.predictions_note ==
        "the trace has no /tokens/predicted (written by an older moescope)");
  StatsOptions o;
  o.bootstrap = 0;
  o.permutations = 0;
  const StatsReport without = ComputeStatsReport(set, o);
  REQUIRE(without.has_vocabulary);
  CHECK(without.Find(Metric::kVocabSpecNextMean, 0, -1, without.shape.domains) != nullptr);
  CHECK(without.Find(Metric::kVocabSpecPredictedMean, 0, -1, without.shape.domains) == nullptr);
  CHECK(without.vocab_predicted.layers == 0);
  const StatsReport with = ComputeStatsReport(InspectTraces({TinyTrace()}), o);
  CHECK(with.Find(Metric::kVocabSpecPredictedMean, 0, -1, with.shape.domains) != nullptr);
  // Everything else is the same.
  CHECK(with.vocab_next.layer_mean == without.vocab_next.layer_mean);

  StatsRunOptions run;
  run.traces = {old};
  run.output = TempDir("trace_old_predicted_stats");
  run.stats = o;
  const StatsSummary summary = RunStats(run);
  CHECK(std::find(summary.notes.begin(), summary.notes.end(),
                  "vocabulary specialization on predictions is left out: the trace has no "
                  "/tokens/predicted (written by an older moescope)") != summary.notes.end());
  // With one old trace among several, the note names it.
  const TraceSetInfo mixed = InspectTraces({TinyTrace(), old});
  CHECK_FALSE(mixed.predictions);
  CHECK_THAT(mixed.predictions_note, Catch::StartsWith(old.string() + " has no /tokens/predicted"));
}

TEST_CASE("predicted ids outside the vocabulary or a short /tokens/predicted are errors",
          "[trace][bad-input]") {
  const auto p = CopyTo(TinyTrace(), "trace_bad_predicted", "predicted.h5");
  WritePredicted(p, 2, 512);  // the tiny model's vocab_size
  {
    const TraceReader r(p);
    CHECK_NOTHROW(r.ReadTokens(0, 2));
    CHECK_THROWS_WITH(r.ReadTokens(0, 3),
                      Catch::Contains(p.string()) && Catch::Contains("/tokens/predicted") &&
                          Catch::Contains("token row 2") && Catch::Contains("predicted id 512") &&
                          Catch::Contains("vocab_size"));
    // Statistics read through the reader and refuse it too.
    StatsOptions o;
    o.bootstrap = 0;
    o.permutations = 0;
    CHECK_THROWS_WITH(ComputeStatsReport(InspectTraces({p}), o), Catch::Contains(p.string()));
  }
  WritePredicted(p, 2, -2);
  CHECK_THROWS_WITH(TraceReader(p).ReadTokens(0, 3), Catch::Contains("predicted id -2"));

  const auto short_p = CopyTo(TinyTrace(), "trace_short_predicted", "short.h5");
  const int64_t n = TraceReader(short_p).num_tokens();
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(short_p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    h5::Handle ds =
        h5::OpenDataset(f.id(), trace::ds::kTokenPredicted, {short_p.string(), "predicted"});
    h5::SetRows(ds.id(), static_cast<hsize_t>(n - 1), {short_p.string(), "predicted"});
  }
  CHECK_THROWS_WITH(TraceReader(short_p),
                    Catch::Contains(short_p.string()) && Catch::Contains("/tokens/predicted") &&
                        Catch::Contains("fewer than the " + std::to_string(n) + " committed"));
}
