#include "analysis/split/expert_split.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <system_error>

#include "analysis/split/balanced_kmeans.h"
#include "analysis/split/coactivation_measure.h"
#include "analysis/split/coactivation_partition.h"
#include "analysis/split/moe_config_json.h"
#include "analysis/split/scale_calibration.h"
#include "analysis/split/split_corpus.h"
#include "analysis/split/split_random.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_value.h"
#include "core/model_loader.h"
#include "core/model_weights.h"
#include "core/safetensors_file.h"

namespace moe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kCompanionFiles[] = {"tokenizer.model", "generation_config.json",
                                           "tokenizer_config.json", "special_tokens_map.json"};

// The last component of the folder name, as Python's basename(normpath(dir)).
std::string FolderName(const fs::path& dir) {
  std::string s = dir.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return fs::path(s).filename().string();
}

// The float values as a tensor of `dtype` (F32, F16 or BF16).
OwnedTensor FloatTensor(std::string name, DType dtype, Shape shape,
                        const std::vector<float>& values) {
  OwnedTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * DTypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(t.bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t h = dtype == DType::kBF16 ? F32ToBF16(values[i]) : F32ToF16(values[i]);
      std::memcpy(t.bytes.data() + 2 * i, &h, 2);
    }
  }
  return t;
}

// Rows `idx` of w [rows, cols] → [idx.size(), cols].
OwnedTensor SliceRows(std::string name, const Matrix& w, const std::vector<int>& idx) {
  const size_t row_bytes = static_cast<size_t>(w.cols) * DTypeSize(w.dtype);
  OwnedTensor t{std::move(name), w.dtype, {static_cast<int64_t>(idx.size()), w.cols}, {}};
  t.bytes.resize(idx.size() * row_bytes);
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (size_t r = 0; r < idx.size(); ++r)
    std::memcpy(t.bytes.data() + r * row_bytes, src + static_cast<size_t>(idx[r]) * row_bytes,
                row_bytes);
  return t;
}

// Columns `idx` of w [rows, cols] → [rows, idx.size()].
OwnedTensor SliceColumns(std::string name, const Matrix& w, const std::vector<int>& idx) {
  const size_t esz = DTypeSize(w.dtype), n = idx.size();
  OwnedTensor t{std::move(name), w.dtype, {w.rows, static_cast<int64_t>(n)}, {}};
  t.bytes.resize(static_cast<size_t>(w.rows) * n * esz);
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r)
    for (size_t c = 0; c < n; ++c)
      std::memcpy(t.bytes.data() + (static_cast<size_t>(r) * n + c) * esz,
                  src + (static_cast<size_t>(r * w.cols) + static_cast<size_t>(idx[c])) * esz, esz);
  return t;
}

Matrix AsMatrix(const OwnedTensor& t) {
  return {t.dtype, t.bytes.data(), t.shape[0], t.shape[1]};
}

// Neuron lists [expert] (ascending) from per-neuron labels.
std::vector<std::vector<int>> ListsFromLabels(const std::vector<int>& labels, int experts) {
  std::vector<std::vector<int>> lists(static_cast<size_t>(experts));
  for (size_t i = 0; i < labels.size(); ++i) lists[labels[i]].push_back(static_cast<int>(i));
  return lists;
}

// Every neuron exactly once and the sizes as planned; anything else is a bug here.
void CheckPartition(const std::vector<std::vector<int>>& lists, const std::vector<int>& sizes,
                    int neurons, int layer) {
  std::vector<int> seen(static_cast<size_t>(neurons), 0);
  for (size_t e = 0; e < lists.size(); ++e) {
    if (static_cast<int>(lists[e].size()) != sizes[e] ||
        !std::is_sorted(lists[e].begin(), lists[e].end()))
      Fail("split", "layer " + std::to_string(layer) + ": expert " + std::to_string(e) +
                        " does not hold " + std::to_string(sizes[e]) + " ascending neurons");
    for (int i : lists[e]) ++seen[static_cast<size_t>(i)];
  }
  if (std::any_of(seen.begin(), seen.end(), [](int s) { return s != 1; }))
    Fail("split", "layer " + std::to_string(layer) + ": the experts do not partition the neurons");
}

std::vector<float> RowsAsF32(const Matrix& w) {
  std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
  ToF32(w.dtype, w.data, out.data(), out.size());
  return out;
}

void Log(const ExpertSplitOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

void ValidateOptions(const ExpertSplitOptions& o) {
  if (o.experts < 1) Fail("--experts", "must be at least 1, got " + std::to_string(o.experts));
  if (o.top_k < 1) Fail("--top-k", "must be at least 1, got " + std::to_string(o.top_k));
  if (o.top_k > o.experts)
    Fail("--top-k", "is " + std::to_string(o.top_k) + ", more than the " +
                        std::to_string(o.experts) + " experts (--experts)");
  if (o.score_scale_factor && !(*o.score_scale_factor > 0))
    Fail("--score-scale-factor", "must be positive, got " + std::to_string(*o.score_scale_factor));
  if (o.kmeans_iterations < 1) Fail("k-means", "needs at least one iteration");
  if (o.method == SplitMethod::kCoactivation && o.coactivation_corpus.empty())
    Fail("--corpus", "--method coactivation needs a corpus to measure co-activation on");
  if (o.method != SplitMethod::kCoactivation && !o.coactivation_corpus.empty())
    Fail("--corpus", std::string("is only read by --method coactivation, not ") +
                         SplitMethodName(o.method) + " (for score calibration use --calibrate)");
  if (!o.calibration_corpus.empty()) {
    if (o.score_scale_factor)
      Fail("--calibrate", "and --score-scale-factor both set the score scale factor; give one");
    if (!o.multiply_gate_scores)
      Fail("--calibrate",
           "has no effect with --no-multiply-gate-scores (the scale factor is never applied)");
  }
  CheckCorpusFiles(o.coactivation_corpus, "--corpus");
  CheckCorpusFiles(o.calibration_corpus, "--calibrate");
}

json PathList(const std::vector<fs::path>& files) {
  json a = json::array();
  for (const fs::path& f : files) a.push_back(f.string());
  return a;
}

}  // namespace

const char* SplitMethodName(SplitMethod method) {
  switch (method) {
    case SplitMethod::kRandom:
      return "random";
    case SplitMethod::kClustering:
      return "clustering";
    case SplitMethod::kCoactivation:
      return "coactivation";
  }
  return "?";
}

const char* SplitMatrixName(SplitMatrix matrix) {
  return matrix == SplitMatrix::kUpProj ? "up_proj" : "gate_proj";
}

SplitMethod ParseSplitMethod(const std::string& name) {
  for (SplitMethod m : {SplitMethod::kRandom, SplitMethod::kClustering, SplitMethod::kCoactivation})
    if (name == SplitMethodName(m)) return m;
  Fail("--method", "is '" + name + "', expected random, clustering or coactivation");
}

SplitMatrix ParseSplitMatrix(const std::string& name) {
  if (name == "up_proj") return SplitMatrix::kUpProj;
  if (name == "gate_proj") return SplitMatrix::kGateProj;
  Fail("--matrix", "is '" + name + "', expected up_proj or gate_proj");
}

namespace {

// The dense config.json, refused unless it is a dense LLaMA in another folder than `out_dir`.
json ReadDenseConfig(const fs::path& dense_dir, const fs::path& out_dir) {
  const fs::path config_path = dense_dir / "config.json";
  const json dense_json = ReadJsonFile(config_path);
  if (!dense_json.is_object()) Fail(config_path.string(), "is not a JSON object");
  const json model_type = dense_json.value("model_type", json());
  if (model_type == "llama_moe")
    Fail(config_path.string(),
         "model_type is \"llama_moe\": the checkpoint already has experts; split needs a dense "
         "LLaMA (model_type \"llama\")");
  if (model_type != "llama")
    Fail(config_path.string(), "model_type is " + model_type.dump() +
                                   ": split needs a dense LLaMA checkpoint (model_type \"llama\")");
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(dense_dir, out_dir, ec))
    Fail(out_dir.string(), "is the dense checkpoint's own folder; write the MoE elsewhere");
  return dense_json;
}

// Dense FFN tensors that cannot be carried into the experts are an error.
void CheckDenseTensors(const LoadedModel& dense, const std::string& body) {
  const int L = dense.config().num_hidden_layers;
  for (const std::string& name : dense.checkpoint->Names()) {
    if (name.find(".mlp.") == std::string::npos) continue;
    bool known = false;
    for (int l = 0; l < L && !known; ++l)
      for (const char* m : {"gate_proj.weight", "up_proj.weight", "down_proj.weight"})
        known = known || name == body + "layers." + std::to_string(l) + ".mlp." + m;
    if (!known)
      Fail(dense.checkpoint->FileOf(name),
           "tensor '" + name +
               "' has no place in a LLaMA-MoE layer (only gate_proj, up_proj and "
               "down_proj weights are split)");
  }
}

// Step 1: the neuron lists of every layer's experts (into result.neurons), by the chosen method;
// returns what the method reports for split.json.
json PartitionNeurons(const LoadedModel& dense, const std::vector<int>& sizes,
                      const ExpertSplitOptions& o, ExpertSplitResult& result) {
  const ModelConfig& dc = dense.config();
  const ModelWeights& dw = dense.model->weights();
  const int L = dc.num_hidden_layers, I = dc.intermediate_size, H = dc.hidden_size;
  const int E = o.experts;
  switch (o.method) {
    case SplitMethod::kRandom:
      for (int l = 0; l < L; ++l) result.neurons.push_back(RandomNeuronSplit(sizes, o.seed, l));
      return json::object();
    case SplitMethod::kClustering: {
      json inertia = json::array(), iterations = json::array();
      for (int l = 0; l < L; ++l) {
        const ExpertWeights& w = dw.layers[static_cast<size_t>(l)].experts[0];
        std::vector<float> rows = RowsAsF32(o.matrix == SplitMatrix::kUpProj ? w.up : w.gate);
        NormalizeRows(rows, I, H);
        const BalancedKMeansResult km =
            BalancedKMeans(rows, I, H, sizes, o.seed, l, o.kmeans_iterations);
        result.neurons.push_back(ListsFromLabels(km.labels, E));
        inertia.push_back(km.inertia);
        iterations.push_back(km.iterations);
        Log(o, "layer " + std::to_string(l) + ": balanced k-means, " +
                   std::to_string(km.iterations) + " iterations, inertia " +
                   std::to_string(km.inertia));
      }
      return {{"matrix", SplitMatrixName(o.matrix)},
              {"normalize", "l2"},
              {"inertia", inertia},
              {"iterations", iterations}};
    }
    case SplitMethod::kCoactivation: {
      const auto windows =
          ReadSplitCorpus(o.coactivation_corpus, dense.tokenizer.get(), dc, "--corpus");
      Log(o, "measuring co-activation over " + std::to_string(windows.size()) + " windows");
      const CoactivationGraphs graphs = MeasureCoactivation(
          *dense.model, windows,
          o.matrix == SplitMatrix::kUpProj ? NeuronActivation::kGateUp : NeuronActivation::kGate);
      json internal = json::array();
      for (int l = 0; l < L; ++l) {
        const GraphPartitionResult p =
            BalancedGraphPartition(graphs.a[static_cast<size_t>(l)], I, sizes, o.seed, l);
        result.neurons.push_back(p.parts);
        const double fraction = p.total_weight > 0 ? p.internal_weight / p.total_weight : 0.0;
        internal.push_back(fraction);
        Log(o, "layer " + std::to_string(l) + ": " + std::to_string(p.passes) +
                   " refinement passes, " + std::to_string(100.0 * fraction) +
                   "% of co-activation inside experts");
      }
      return {{"matrix", SplitMatrixName(o.matrix)},
              {"activation", o.matrix == SplitMatrix::kUpProj ? "silu(gate_proj x) * up_proj x"
                                                              : "silu(gate_proj x)"},
              {"kappa", "l1_norm"},
              {"threshold", 1.0},
              {"corpus", PathList(o.coactivation_corpus)},
              {"tokens", graphs.tokens},
              {"internal_weight_fraction", internal}};
    }
  }
  return json::object();
}

// Step 2: the tensors this split owns: per layer the router (gate_network.0, .2, weight_noise)
// and E experts sliced from the dense FFN.
struct ExpertTensors {
  std::vector<OwnedTensor> owned;
  std::vector<size_t> router_at;               // [L] index of gate_network.0 in `owned`
  std::vector<std::vector<size_t>> expert_at;  // [L][E] index of weight_gate.e in `owned`
};

ExpertTensors MakeExpertTensors(const LoadedModel& dense, const std::string& body,
                                const ExpertSplitResult& result, const ExpertSplitOptions& o) {
  const ModelWeights& dw = dense.model->weights();
  const int L = dense.config().num_hidden_layers, H = dense.config().hidden_size, E = o.experts;
  ExpertTensors t;
  t.owned.reserve(static_cast<size_t>(L) * (3 * E + 3));
  t.expert_at.resize(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) {
    const std::string p = body + "layers." + std::to_string(l) + ".mlp.";
    const ExpertWeights& w = dw.layers[static_cast<size_t>(l)].experts[0];
    const DType rd = w.gate.dtype;
    t.router_at.push_back(t.owned.size());
    t.owned.push_back(FloatTensor(p + "gate.gate_network.0.weight", rd, {E, H},
                                  NormalMatrix(E, H, o.seed, SplitStream::kGate0, l)));
    t.owned.push_back(FloatTensor(p + "gate.gate_network.2.weight", rd, {E, E},
                                  NormalMatrix(E, E, o.seed, SplitStream::kGate2, l)));
    t.owned.push_back(FloatTensor(p + "gate.weight_noise.weight", rd, {E, H},
                                  std::vector<float>(static_cast<size_t>(E) * H, 0.0f)));
    const std::string q = p + "calculator.experts.";
    for (int e = 0; e < E; ++e) {
      const std::vector<int>& idx = result.neurons[static_cast<size_t>(l)][static_cast<size_t>(e)];
      const std::string s = std::to_string(e);
      t.expert_at[static_cast<size_t>(l)].push_back(t.owned.size());
      t.owned.push_back(SliceRows(q + "weight_gate." + s, w.gate, idx));
      t.owned.push_back(SliceRows(q + "weight_up." + s, w.up, idx));
      t.owned.push_back(SliceColumns(q + "weight_down." + s, w.down, idx));
    }
  }
  return t;
}

// Step 4 (optional): layer-wise score scale factors (docs/llama-moe-spec.md §5.4) written into
// `config`, `result` and split.json's "calibration".
void CalibrateSplit(const LoadedModel& dense, const ModelConfig& moe_config,
                    const ExpertTensors& t, const ExpertSplitOptions& o, json& config, json& split,
                    ExpertSplitResult& result) {
  const int L = dense.config().num_hidden_layers;
  const auto windows =
      ReadSplitCorpus(o.calibration_corpus, dense.tokenizer.get(), dense.config(), "--calibrate");
  ModelWeights mw = dense.model->weights();
  for (int l = 0; l < L; ++l) {
    LayerWeights& lw = mw.layers[static_cast<size_t>(l)];
    const size_t router = t.router_at[static_cast<size_t>(l)];
    lw.router_in = AsMatrix(t.owned[router]);
    lw.router_out = AsMatrix(t.owned[router + 1]);
    lw.experts.clear();
    for (size_t at : t.expert_at[static_cast<size_t>(l)])
      lw.experts.push_back(
          {AsMatrix(t.owned[at]), AsMatrix(t.owned[at + 1]), AsMatrix(t.owned[at + 2])});
  }
  Log(o, "calibrating score scale factors over " + std::to_string(windows.size()) + " windows");
  const ScaleCalibration cal = CalibrateScaleFactors(*dense.model, moe_config, mw, windows);
  json factors = json::array();
  for (float f : cal.scale_factors) factors.push_back(static_cast<double>(f));
  config["score_scale_factor"] = factors;
  result.score_scale_factors = cal.scale_factors;
  result.calibrated = true;
  split["calibration"] = {{"corpus", PathList(o.calibration_corpus)},
                          {"tokens", cal.tokens},
                          {"r_dense", cal.r_dense},
                          {"r_moe", cal.r_moe},
                          {"score_scale_factor", factors},
                          {"rule",
                           "r = mean ||residual||_1 / mean ||mlp_out||_1 per layer; "
                           "sf_l = r_moe_l (sf = 1 in layer l, earlier layers calibrated) / "
                           "r_dense_l"}};
  for (int l = 0; l < L; ++l)
    Log(o, "layer " + std::to_string(l) + ": score_scale_factor " +
               std::to_string(cal.scale_factors[static_cast<size_t>(l)]));
}

}  // namespace

ExpertSplitResult SplitDenseCheckpoint(const fs::path& dense_dir, const fs::path& out_dir,
                                       const ExpertSplitOptions& o) {
  ValidateOptions(o);
  const json dense_json = ReadDenseConfig(dense_dir, out_dir);
  const LoadedModel dense =
      LoadModel(dense_dir, {.allow_non_finite_weights = o.allow_non_finite_weights});
  const ModelConfig& dc = dense.config();
  const ModelWeights& dw = dense.model->weights();
  const int L = dc.num_hidden_layers, I = dc.intermediate_size;
  const std::vector<int> sizes =
      ExpertSizes(I, o.experts, o.allow_uneven, (dense_dir / "config.json").string());
  const DType dtype = dw.layers.empty() ? DType::kF32 : dw.layers[0].experts[0].gate.dtype;
  const std::string body = BodyPrefix(dc);
  CheckDenseTensors(dense, body);

  // 1. Neuron lists per layer.
  ExpertSplitResult result;
  result.dtype = DTypeName(dtype);
  result.sizes.assign(static_cast<size_t>(L), sizes);
  const json method_info = PartitionNeurons(dense, sizes, o, result);
  for (int l = 0; l < L; ++l) CheckPartition(result.neurons[static_cast<size_t>(l)], sizes, I, l);

  // 2. Tensors: the dense ones outside the FFN as they are, the experts and routers owned here.
  const ExpertTensors tensors = MakeExpertTensors(dense, body, result, o);
  std::vector<NamedView> views;
  for (const std::string& name : dense.checkpoint->Names()) {
    if (name.find(".mlp.") != std::string::npos) continue;
    if (name.size() >= 19 && name.ends_with("rotary_emb.inv_freq")) continue;
    views.push_back({name, *dense.checkpoint->Find(name)});
  }
  for (const OwnedTensor& t : tensors.owned) views.push_back({t.name, t.view()});
  std::sort(views.begin(), views.end(),
            [](const NamedView& a, const NamedView& b) { return a.name < b.name; });

  // 3. config.json and split.json.
  json config = MoeConfigJson(dense_json, dc, sizes, dtype, o);
  const ModelConfig moe_config =
      ModelConfig::FromJson(config, (out_dir / "config.json").string());
  result.score_scale_factors = moe_config.score_scale_factor;
  json split = {{"method", SplitMethodName(o.method)},
                {"seed", o.seed},
                {"generator", "splitmix64 (see split_reference.py)"},
                {"dense", FolderName(dense_dir)}};
  if (o.method != SplitMethod::kRandom) split[SplitMethodName(o.method)] = method_info;

  // 4. Optional layer-wise calibration of the score scale factor.
  if (!o.calibration_corpus.empty())
    CalibrateSplit(dense, moe_config, tensors, o, config, split, result);
  split["neurons"] = result.neurons;

  // 5. Write.
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) Fail(out_dir.string(), "cannot create folder: " + ec.message());
  WriteSafetensors((out_dir / "model.safetensors").string(), views, {{"format", "pt"}});
  WriteFileAtomically(out_dir / "config.json", config.dump(2) + "\n");
  for (const char* file : kCompanionFiles)
    if (fs::exists(dense_dir / file)) CopyFileAtomically(dense_dir / file, out_dir / file);
  WriteFileAtomically(out_dir / "split.json", split.dump(2) + "\n");
  return result;
}

}  // namespace moe
