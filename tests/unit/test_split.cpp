// moescope split: dense LLaMA → LLaMA-MoE. The random split is compared tensor by tensor with the
// Python reference (tests/reference/split_reference.py); every method must reproduce the dense
// logits with K = E and multiply_gate_scores false, partition the neurons into balanced experts
// and be deterministic.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "analysis/split/balanced_kmeans.h"
#include "analysis/split/coactivation_measure.h"
#include "analysis/split/coactivation_partition.h"
#include "analysis/split/expert_split.h"
#include "analysis/split/scale_calibration.h"
#include "analysis/split/split_corpus.h"
#include "analysis/split/split_random.h"
#include "core/batch.h"
#include "core/error.h"
#include "core/heads.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"
#include "test_paths.h"
#include "trace_test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path Dense() {
  return FixtureDir() / "dense_llama";
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

// A pre-tokenized corpus (the fixture has no tokenizer.model): `docs` documents of 20-90 ids.
fs::path WriteCorpus(const fs::path& dir, int docs, uint32_t seed) {
  const fs::path file = dir / "corpus.jsonl";
  std::ofstream out(file);
  std::mt19937 rng(seed);
  for (int d = 0; d < docs; ++d) {
    json ids = json::array({1});
    const int n = 20 + static_cast<int>(rng() % 70);
    for (int i = 0; i < n; ++i) ids.push_back(3 + static_cast<int>(rng() % 254));
    out << json{{"id", d}, {"domain", "toy"}, {"input_ids", ids}}.dump() << "\n";
  }
  return file;
}

const std::vector<int32_t> kIds = {1, 138, 145, 97, 232, 163, 189, 253, 26, 96, 42, 58, 7, 200};

std::vector<float> Logits(const fs::path& dir, const std::vector<int32_t>& ids = kIds) {
  const moe::LoadedModel m = moe::LoadModel(dir);
  const moe::Batch batch = moe::Batch::Single(ids);
  const std::vector<float> hidden = m.model->Forward(batch);
  return moe::LmLogits(*m.model, hidden.data(), batch.tokens());
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

moe::ExpertSplitOptions Options(moe::SplitMethod method, int experts, int top_k, uint64_t seed) {
  moe::ExpertSplitOptions o;
  o.method = method;
  o.experts = experts;
  o.top_k = top_k;
  o.seed = seed;
  return o;
}

// Every layer's experts hold each neuron exactly once, ascending, with the given sizes, and
// split.json and the checkpoint's tensors say the same.
void CheckPartition(const fs::path& out, const moe::ExpertSplitResult& r, int neurons,
                    int experts) {
  const json split = ReadJson(out / "split.json");
  CHECK(split["neurons"] == json(r.neurons));
  const json config = ReadJson(out / "config.json");
  CHECK(config["size_experts"] == json(r.sizes));
  const moe::SafetensorsFile file((out / "model.safetensors").string());
  for (size_t l = 0; l < r.neurons.size(); ++l) {
    REQUIRE(r.neurons[l].size() == static_cast<size_t>(experts));
    std::vector<int> seen(static_cast<size_t>(neurons), 0);
    size_t smallest = SIZE_MAX, largest = 0;
    for (size_t e = 0; e < r.neurons[l].size(); ++e) {
      const std::vector<int>& list = r.neurons[l][e];
      CHECK(std::is_sorted(list.begin(), list.end()));
      for (int i : list) ++seen[static_cast<size_t>(i)];
      smallest = std::min(smallest, list.size());
      largest = std::max(largest, list.size());
      CHECK(static_cast<int>(list.size()) == r.sizes[l][e]);
      const std::string p = "model.layers." + std::to_string(l) + ".mlp.calculator.experts.";
      CHECK(file.Tensor(p + "weight_gate." + std::to_string(e)).shape ==
            moe::Shape{static_cast<int64_t>(list.size()), 64});
      CHECK(file.Tensor(p + "weight_down." + std::to_string(e)).shape ==
            moe::Shape{64, static_cast<int64_t>(list.size())});
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
    CHECK(largest - smallest <= 1);
  }
}

// Tensor by tensor: same names, dtypes, shapes and bytes.
void CheckSameTensors(const fs::path& a, const fs::path& b) {
  const moe::SafetensorsFile fa(a.string()), fb(b.string());
  REQUIRE(fa.Names() == fb.Names());
  for (const std::string& name : fa.Names()) {
    INFO(name);
    const moe::TensorView x = fa.Tensor(name), y = fb.Tensor(name);
    CHECK(x.dtype == y.dtype);
    REQUIRE(x.shape == y.shape);
    CHECK(std::memcmp(x.data, y.data, x.nbytes()) == 0);
  }
}

std::string ErrorOf(const fs::path& dense, const fs::path& out, const moe::ExpertSplitOptions& o) {
  try {
    moe::SplitDenseCheckpoint(dense, out, o);
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("SplitMix64 and the permutation follow the reference's definition", "[split]") {
  // Vigna's splitmix64 with state 0 (seed 0, stream 0, layer 0): first output.
  moe::SplitMix64 rng(0, static_cast<moe::SplitStream>(0), 0);
  CHECK(rng.Next() == 0xE220A8397B1DCDAFull);
  const std::vector<int> perm = moe::NeuronPermutation(100, 7, 1);
  std::vector<int> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) CHECK(sorted[i] == i);
  CHECK(moe::ExpertSizes(256, 6, true, "x") == std::vector<int>{43, 43, 43, 43, 42, 42});
  CHECK_THROWS_WITH(moe::ExpertSizes(256, 6, false, "cfg"),
                    Catch::Contains("cfg") && Catch::Contains("--allow-uneven"));
}

TEST_CASE("random split equals the Python reference bit for bit", "[split]") {
  struct Case {
    int experts, top_k;
    uint64_t seed;
    std::string extra;  // reference flags
    bool multiply;
    std::optional<double> scale;
  };
  const std::vector<Case> cases = {
      {8, 2, 3, "", true, std::nullopt},
      {4, 4, 12345678901ull, " --no-multiply-gate-scores --score-scale-factor 1.5", false, 1.5}};
  for (const Case& c : cases) {
    const fs::path dir = TempDir("split-reference-" + std::to_string(c.experts));
    const fs::path ref = dir / "dense_llama_ref", cpp = dir / "cpp";
    const std::string py = std::string(MOESCOPE_SOURCE_DIR) + "/tests/reference/split_reference.py";
    const trace_test::CommandResult r = trace_test::RunCommand(
        "/usr/bin/python3 " + trace_test::Quote(py) + " " + trace_test::Quote(Dense().string()) +
        " " + trace_test::Quote(ref.string()) + " --experts " + std::to_string(c.experts) +
        " --top-k " + std::to_string(c.top_k) + " --seed " + std::to_string(c.seed) + c.extra);
    INFO(r.output);
    REQUIRE(r.status == 0);
    moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, c.experts, c.top_k, c.seed);
    o.multiply_gate_scores = c.multiply;
    o.score_scale_factor = c.scale;
    moe::SplitDenseCheckpoint(Dense(), cpp, o);
    CheckSameTensors(ref / "model.safetensors", cpp / "model.safetensors");
    CHECK(ReadJson(ref / "config.json") == ReadJson(cpp / "config.json"));
    CHECK(ReadJson(ref / "split.json") == ReadJson(cpp / "split.json"));
    // Same layout too: sorted keys, indent 2.
    CHECK(ReadBytes(ref / "config.json") == ReadBytes(cpp / "config.json"));
    CHECK(ReadBytes(ref / "split.json") == ReadBytes(cpp / "split.json"));
  }
}

TEST_CASE("moescope split on the command line writes the reference's checkpoint", "[split][cli]") {
  const fs::path dir = TempDir("split-cli");
  const std::string py = std::string(MOESCOPE_SOURCE_DIR) + "/tests/reference/split_reference.py";
  const trace_test::CommandResult ref = trace_test::RunCommand(
      "/usr/bin/python3 " + trace_test::Quote(py) + " " + trace_test::Quote(Dense().string()) +
      " " + trace_test::Quote((dir / "ref").string()) + " --experts 4 --top-k 2");
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  const trace_test::CommandResult cli = trace_test::RunCommand(
      trace_test::Quote(MOESCOPE_CLI) + " split --experts 4 --top-k 2 " +
      trace_test::Quote(Dense().string()) + " " + trace_test::Quote((dir / "cpp").string()));
  INFO(cli.output);
  REQUIRE(cli.status == 0);
  CHECK_THAT(cli.output, Catch::Contains("random split, 4 experts of 64"));
  CheckSameTensors(dir / "ref" / "model.safetensors", dir / "cpp" / "model.safetensors");
  CHECK(ReadJson(dir / "ref" / "config.json") == ReadJson(dir / "cpp" / "config.json"));
  const json a = ReadJson(dir / "ref" / "split.json"), b = ReadJson(dir / "cpp" / "split.json");
  CHECK(a["neurons"] == b["neurons"]);
}

TEST_CASE("every method with K = E reproduces the dense logits", "[split]") {
  const std::vector<float> dense = Logits(Dense());
  const fs::path corpus = WriteCorpus(TempDir("split-corpus"), 12, 5);
  for (moe::SplitMethod method : {moe::SplitMethod::kRandom, moe::SplitMethod::kClustering,
                                  moe::SplitMethod::kCoactivation}) {
    for (int experts : {4, 8}) {
      const std::string name = std::string(moe::SplitMethodName(method)) + std::to_string(experts);
      SECTION(name) {
        const fs::path out = TempDir("split-" + name);
        moe::ExpertSplitOptions o = Options(method, experts, experts, 11);
        o.multiply_gate_scores = false;
        if (method == moe::SplitMethod::kCoactivation) o.coactivation_corpus = {corpus};
        const moe::ExpertSplitResult r = moe::SplitDenseCheckpoint(Dense(), out, o);
        CheckPartition(out, r, 256, experts);
        for (const auto& sizes : r.sizes)
          CHECK(sizes == std::vector<int>(static_cast<size_t>(experts), 256 / experts));
        CHECK(MaxAbsDiff(Logits(out), dense) < 1e-4f);
        const json config = ReadJson(out / "config.json");
        CHECK(config["model_type"] == "llama_moe");
        CHECK(config["multiply_gate_scores"] == false);
        CHECK(config["num_selects"] == experts);
        CHECK(config["torch_dtype"] == "float32");
        CHECK(ReadJson(out / "split.json")["method"] == moe::SplitMethodName(method));
      }
    }
  }
}

// Sum of squared distances of the normalized rows to their expert's mean row.
static double Inertia(const std::vector<float>& rows, int64_t dim,
                      const std::vector<std::vector<int>>& lists) {
  double total = 0;
  for (const auto& list : lists) {
    std::vector<double> mean(static_cast<size_t>(dim), 0.0);
    for (int i : list)
      for (int64_t d = 0; d < dim; ++d) mean[d] += rows[i * dim + d] / list.size();
    for (int i : list)
      for (int64_t d = 0; d < dim; ++d) total += std::pow(rows[i * dim + d] - mean[d], 2);
  }
  return total;
}

// Total co-activation weight inside experts.
static double Internal(const std::vector<float>& a, int64_t n,
                       const std::vector<std::vector<int>>& lists) {
  double total = 0;
  for (const auto& list : lists)
    for (int i : list)
      for (int j : list)
        if (i < j) total += a[i * n + j];
  return total;
}

TEST_CASE("clustering and co-activation beat a random split on their own objectives", "[split]") {
  const fs::path corpus = WriteCorpus(TempDir("split-corpus-2"), 12, 6);
  moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, 4, 2, 0);
  const auto random = moe::SplitDenseCheckpoint(Dense(), TempDir("split-r"), o);
  o.method = moe::SplitMethod::kClustering;
  const fs::path clustered_dir = TempDir("split-c");
  const auto clustered = moe::SplitDenseCheckpoint(Dense(), clustered_dir, o);
  o.method = moe::SplitMethod::kCoactivation;
  o.coactivation_corpus = {corpus};
  const auto coact = moe::SplitDenseCheckpoint(Dense(), TempDir("split-a"), o);

  const moe::LoadedModel dense = moe::LoadModel(Dense());
  const json info = ReadJson(clustered_dir / "split.json")["clustering"];
  CHECK(info["matrix"] == "up_proj");
  const std::vector<std::vector<int32_t>> windows =
      moe::ReadSplitCorpus({corpus}, nullptr, dense.config(), "--corpus");
  const moe::CoactivationGraphs graphs =
      moe::MeasureCoactivation(*dense.model, windows, moe::NeuronActivation::kGateUp);
  for (size_t l = 0; l < 2; ++l) {
    const moe::Matrix& up = dense.model->weights().layers[l].experts[0].up;
    std::vector<float> rows(static_cast<const float*>(up.data),
                            static_cast<const float*>(up.data) + up.rows * up.cols);
    moe::NormalizeRows(rows, up.rows, up.cols);
    const double km = Inertia(rows, up.cols, clustered.neurons[l]);
    CHECK(km == Approx(info["inertia"][l].get<double>()).epsilon(1e-6));
    CHECK(km < 0.97 * Inertia(rows, up.cols, random.neurons[l]));
    const auto& a = graphs.a[l];
    CHECK(Internal(a, 256, coact.neurons[l]) > 1.01 * Internal(a, 256, random.neurons[l]));
  }
}

TEST_CASE("balanced k-means separates well-separated clusters exactly", "[split]") {
  // 4 tight groups of 5 points on the axes, shuffled.
  std::vector<float> points;
  std::vector<int> truth;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  for (int i = 0; i < 20; ++i) {
    const int g = (i * 7) % 4;
    truth.push_back(g);
    for (int d = 0; d < 4; ++d) points.push_back((d == g ? 1.0f : 0.0f) + noise(rng));
  }
  const moe::BalancedKMeansResult r = moe::BalancedKMeans(points, 20, 4, {5, 5, 5, 5}, 0, 0);
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 20; ++j) CHECK((r.labels[i] == r.labels[j]) == (truth[i] == truth[j]));
}

TEST_CASE("the co-activation partition recovers planted blocks", "[split]") {
  // 3 blocks of 4 neurons, strong edges inside blocks, weak noise between.
  const int n = 12;
  std::vector<int> block(n);
  for (int i = 0; i < n; ++i) block[i] = (i * 5) % 3;
  std::vector<float> a(n * n, 0.0f);
  std::mt19937 rng(9);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const float w = block[i] == block[j] ? 1.0f : 0.1f * static_cast<float>(rng() % 10) / 10;
      a[i * n + j] = a[j * n + i] = w;
    }
  for (uint64_t seed : {0, 1, 2}) {
    const moe::GraphPartitionResult r = moe::BalancedGraphPartition(a, n, {4, 4, 4}, seed, 0);
    for (const auto& part : r.parts) {
      REQUIRE(part.size() == 4);
      for (int i : part) CHECK(block[i] == block[part[0]]);
    }
  }
}

TEST_CASE("uneven experts with --allow-uneven differ in size by at most one", "[split]") {
  const std::vector<float> dense = Logits(Dense());
  const fs::path out = TempDir("split-uneven");
  moe::ExpertSplitOptions o = Options(moe::SplitMethod::kClustering, 6, 6, 2);
  o.allow_uneven = true;
  o.multiply_gate_scores = false;
  const moe::ExpertSplitResult r = moe::SplitDenseCheckpoint(Dense(), out, o);
  CheckPartition(out, r, 256, 6);
  CHECK(r.sizes[0] == std::vector<int>{43, 43, 43, 43, 42, 42});
  CHECK(MaxAbsDiff(Logits(out), dense) < 1e-4f);
}

TEST_CASE("the same seed gives identical files, another seed another split", "[split]") {
  const fs::path corpus = WriteCorpus(TempDir("split-corpus-3"), 8, 7);
  for (moe::SplitMethod method : {moe::SplitMethod::kRandom, moe::SplitMethod::kClustering,
                                  moe::SplitMethod::kCoactivation}) {
    const std::string name = moe::SplitMethodName(method);
    INFO(name);
    moe::ExpertSplitOptions o = Options(method, 8, 2, 42);
    if (method == moe::SplitMethod::kCoactivation) o.coactivation_corpus = {corpus};
    const fs::path a = TempDir("split-det-a-" + name), b = TempDir("split-det-b-" + name);
    moe::SplitDenseCheckpoint(Dense(), a, o);
    moe::SplitDenseCheckpoint(Dense(), b, o);
    for (const char* f : {"model.safetensors", "config.json", "split.json"})
      CHECK(ReadBytes(a / f) == ReadBytes(b / f));
    o.seed = 43;
    const fs::path c = TempDir("split-det-c-" + name);
    const auto other = moe::SplitDenseCheckpoint(Dense(), c, o);
    const json first = ReadJson(a / "split.json");
    if (method == moe::SplitMethod::kRandom) CHECK(first["neurons"] != json(other.neurons));
    // The router always changes with the seed.
    CHECK(ReadBytes(a / "model.safetensors") != ReadBytes(c / "model.safetensors"));
  }
}

TEST_CASE(
    "calibration (--calibrate) sets per-layer factors that match the dense output-to-residual "
    "ratio",
    "[split]") {
  const fs::path corpus = WriteCorpus(TempDir("split-corpus-4"), 10, 8);
  const fs::path out = TempDir("split-calibrated");
  moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, 4, 2, 5);
  o.calibration_corpus = {corpus};
  const moe::ExpertSplitResult r = moe::SplitDenseCheckpoint(Dense(), out, o);
  CHECK(r.calibrated);
  const json config = ReadJson(out / "config.json");
  REQUIRE(config["score_scale_factor"].is_array());
  REQUIRE(config["score_scale_factor"].size() == 2);
  for (const json& f : config["score_scale_factor"]) CHECK(f.get<double>() > 0);
  const json split = ReadJson(out / "split.json");
  CHECK(split["calibration"]["tokens"].get<int64_t>() > 0);

  // Re-measured on the written model, the ratios agree with the dense model's.
  const moe::LoadedModel dense = moe::LoadModel(Dense());
  const moe::LoadedModel moe_model = moe::LoadModel(out);
  const std::vector<std::vector<int32_t>> docs =
      moe::ReadSplitCorpus({corpus}, nullptr, dense.config(), "--calibrate");
  const auto rd = moe::ResidualToOutputRatios(*dense.model, docs);
  const auto rm = moe::ResidualToOutputRatios(*moe_model.model, docs);
  for (size_t l = 0; l < rd.size(); ++l) CHECK(rm[l] == Approx(rd[l]).epsilon(1e-4));
}

TEST_CASE("bf16 weights stay bf16", "[split]") {
  const fs::path dense = TempDir("split-dense-bf16");
  {
    const moe::SafetensorsFile f((Dense() / "model.safetensors").string());
    std::vector<moe::OwnedTensor> tensors;
    for (const std::string& name : f.Names()) {
      const moe::TensorView v = f.Tensor(name);
      moe::OwnedTensor t{name, moe::DType::kBF16, v.shape, {}};
      t.bytes.resize(static_cast<size_t>(v.numel()) * 2);
      const auto* x = static_cast<const float*>(v.data);
      for (int64_t i = 0; i < v.numel(); ++i) {
        const uint16_t h = moe::F32ToBF16(x[i]);
        std::memcpy(t.bytes.data() + 2 * i, &h, 2);
      }
      tensors.push_back(std::move(t));
    }
    moe::WriteSafetensors((dense / "model.safetensors").string(), tensors, {{"format", "pt"}});
    json config = ReadJson(Dense() / "config.json");
    config["torch_dtype"] = "bfloat16";
    std::ofstream(dense / "config.json") << config.dump(2);
  }
  const fs::path out = TempDir("split-bf16");
  moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, 4, 4, 0);
  o.multiply_gate_scores = false;
  const moe::ExpertSplitResult r = moe::SplitDenseCheckpoint(dense, out, o);
  CHECK(r.dtype == "BF16");
  CHECK(ReadJson(out / "config.json")["torch_dtype"] == "bfloat16");
  const moe::SafetensorsFile f((out / "model.safetensors").string());
  for (const std::string& name : f.Names()) CHECK(f.Tensor(name).dtype == moe::DType::kBF16);
  CHECK(MaxAbsDiff(Logits(out), Logits(dense)) < 2e-2f);
}

TEST_CASE("split reports bad inputs with the file and field", "[split][bad-input]") {
  const fs::path out = TempDir("split-bad");
  SECTION("a checkpoint that already has experts") {
    const std::string e =
        ErrorOf(FixtureDir() / "uneven_experts", out, Options(moe::SplitMethod::kRandom, 4, 2, 0));
    CHECK_THAT(e, Catch::Contains("config.json") && Catch::Contains("model_type") &&
                      Catch::Contains("llama_moe"));
  }
  SECTION("E not dividing intermediate_size") {
    const std::string e = ErrorOf(Dense(), out, Options(moe::SplitMethod::kRandom, 7, 2, 0));
    CHECK_THAT(e, Catch::Contains("config.json") && Catch::Contains("intermediate_size 256") &&
                      Catch::Contains("--allow-uneven"));
    CHECK_FALSE(fs::exists(out / "model.safetensors"));
  }
  SECTION("K > E") {
    const std::string e = ErrorOf(Dense(), out, Options(moe::SplitMethod::kRandom, 4, 5, 0));
    CHECK_THAT(e, Catch::Contains("--top-k") && Catch::Contains("5"));
  }
  SECTION("a corpus that does not exist") {
    moe::ExpertSplitOptions o = Options(moe::SplitMethod::kCoactivation, 4, 2, 0);
    o.coactivation_corpus = {out / "missing.jsonl"};
    CHECK_THAT(ErrorOf(Dense(), out, o),
               Catch::Contains("missing.jsonl") && Catch::Contains("does not exist"));
    o = Options(moe::SplitMethod::kRandom, 4, 2, 0);
    o.calibration_corpus = {out / "nowhere.jsonl"};
    CHECK_THAT(ErrorOf(Dense(), out, o),
               Catch::Contains("nowhere.jsonl") && Catch::Contains("--calibrate"));
  }
  SECTION("co-activation without a corpus, a corpus for another method") {
    CHECK_THAT(ErrorOf(Dense(), out, Options(moe::SplitMethod::kCoactivation, 4, 2, 0)),
               Catch::Contains("--corpus"));
    moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, 4, 2, 0);
    o.coactivation_corpus = {Dense() / "config.json"};
    CHECK_THAT(ErrorOf(Dense(), out, o), Catch::Contains("--corpus"));
  }
  SECTION("calibration that cannot act") {
    moe::ExpertSplitOptions o = Options(moe::SplitMethod::kRandom, 4, 2, 0);
    o.calibration_corpus = {Dense() / "config.json"};
    o.multiply_gate_scores = false;
    CHECK_THAT(ErrorOf(Dense(), out, o), Catch::Contains("--no-multiply-gate-scores"));
  }
  SECTION("a folder without config.json") {
    CHECK_THAT(ErrorOf(out, TempDir("split-bad-2"), Options(moe::SplitMethod::kRandom, 4, 2, 0)),
               Catch::Contains("config.json") && Catch::Contains("does not exist"));
  }
  SECTION("the command line: one line, exit code 1") {
    const trace_test::CommandResult r = trace_test::RunCommand(
        trace_test::Quote(MOESCOPE_CLI) + " split --experts 7 --top-k 2 " +
        trace_test::Quote(Dense().string()) + " " + trace_test::Quote(out.string()));
    CHECK(r.status == 1);
    CHECK_THAT(r.output,
               Catch::StartsWith("moescope: error: ") && Catch::Contains("intermediate_size 256"));
    const trace_test::CommandResult m = trace_test::RunCommand(
        trace_test::Quote(MOESCOPE_CLI) +
        " split --method kmeans --experts 4 "
        "--top-k 2 " +
        trace_test::Quote(Dense().string()) + " " + trace_test::Quote(out.string()));
    CHECK(m.status == 1);
    CHECK_THAT(m.output, Catch::Contains("--method"));
  }
}
