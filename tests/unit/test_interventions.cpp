// What leaves the engine through hooks is what `moescope forward` writes and what upstream
// computed; interventions equal the PyTorch reference changed by hand; the trace's per-domain
// loads are upstream's `load` summed over the same tokens.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "analysis/run/trace_windows.h"
#include "analysis/trace/trace_reader.h"
#include "core/hooks.h"
#include "core/kv_cache.h"
#include "core/linear.h"
#include "core/routing_policy.h"
#include "core/safetensors_file.h"
#include "reference_case.h"
#include "trace_test_util.h"

using namespace moe;
using namespace moe::testing;

namespace {

// Copies every routing site of every layer, as a researcher's observer would.
struct RoutingCapture : RoutingObserver {
  std::map<std::string, OwnedTensor> tensors;
  int64_t batch = 0, seq = 0;
  std::vector<HookRequest> Requests() const override {
    return {{HookSite::kRouterLogits, -1}, {HookSite::kTopkIds, -1},  {HookSite::kTopkWeights, -1},
            {HookSite::kExpertLoad, -1},   {HookSite::kMoeInput, -1}, {HookSite::kMoeOutput, -1}};
  }
  void OnEvent(const HookEvent& e) override {
    const std::string p = "layers." + std::to_string(e.layer) + ".";
    switch (e.site) {
      case HookSite::kRouterLogits:
        Put(MakeF32Tensor(p + "gate_logits", {e.rows, e.cols}, e.values));
        break;
      case HookSite::kTopkIds:
        Put(MakeI32Tensor(p + "topk_indices", {e.rows, e.cols}, e.ids));
        break;
      case HookSite::kTopkWeights:
        Put(MakeF32Tensor(p + "topk_scores", {e.rows, e.cols}, e.values));
        break;
      case HookSite::kExpertLoad:
        Put(MakeI32Tensor(p + "load", {e.cols}, e.ids));
        Put(MakeF32Tensor(p + "importance", {e.cols}, e.values));
        break;
      case HookSite::kMoeInput:
        Put(MakeF32Tensor(p + "moe_in", {batch, seq, e.cols}, e.values));
        break;
      case HookSite::kMoeOutput:
        Put(MakeF32Tensor(p + "moe_out", {batch, seq, e.cols}, e.values));
        break;
      default:
        break;
    }
  }
  void Put(OwnedTensor t) {
    const std::string name = t.name;
    tensors.insert_or_assign(name, std::move(t));
  }
};

bool BitEqual(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.nbytes() == b.nbytes() &&
         std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("hooks see exactly what moescope forward writes for the golden cases",
          "[hooks][golden]") {
  for (const char* name : {"tiny_mlp_gate", "gqa_linear_gate", "batch_padding"}) {
    INFO("golden case " << name);
    const std::filesystem::path dir = GoldenDir() / name;
    const LoadedModel m = LoadModel(dir);
    const Batch batch = BatchFromInputs(ReadJson(dir / "inputs.json"));
    RoutingCapture capture;
    capture.batch = batch.batch_size;
    capture.seq = batch.seq_len;
    {
      HookGuard guard = m.model->hooks().Add(&capture);
      m.model->Forward(batch);
    }
    const std::filesystem::path out = TempDir("hooks_vs_forward") / (std::string(name) + ".st");
    const trace_test::CommandResult cli =
        trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) +
                               " forward --activations --model " + trace_test::Quote(dir.string()) +
                               " --input " + trace_test::Quote((dir / "inputs.json").string()) +
                               " --output " + trace_test::Quote(out.string()));
    INFO(cli.output);
    REQUIRE(cli.status == 0);
    const SafetensorsFile written(out.string());
    const SafetensorsFile golden((dir / "expected.safetensors").string());
    REQUIRE(capture.tensors.size() == 7 * static_cast<size_t>(m.config().num_hidden_layers));
    for (const auto& [tensor_name, got] : capture.tensors) {
      INFO("tensor " << tensor_name);
      REQUIRE(written.Contains(tensor_name));
      CHECK(BitEqual(got.view(), written.Tensor(tensor_name)));
      // Routing ids of real tokens are upstream's exactly (padding rows route too, and are
      // compared as well: upstream counts them in load).
      if (golden.Contains(tensor_name) && tensor_name.find("topk_indices") != std::string::npos)
        ExpectClose(tensor_name, got.view(), golden.Tensor(tensor_name));
    }
  }
}

namespace {

// Runs tests/python/SCRIPT (a PyTorch reference check) on the CLI and three golden cases, and
// checks it reports success.
void CheckReferenceScript(const std::string& script_name, const std::string& work) {
  const std::string script = (trace_test::SourceDir() / "tests/python" / script_name).string();
  std::vector<std::string> args = {"OMP_NUM_THREADS=1", "/usr/bin/python3",
                                   trace_test::Quote(script), trace_test::Quote(trace_test::Cli()),
                                   trace_test::Quote(TempDir(work).string())};
  for (const std::filesystem::path& c :
       {GoldenDir() / "tiny_mlp_gate", GoldenDir() / "gqa_linear_gate",
        FixtureDir() / "softmax_off"})
    args.push_back(trace_test::Quote(c.string()));
  std::string cmd;
  for (const std::string& a : args) cmd.append(a).append(" ");
  const trace_test::CommandResult r = trace_test::RunCommand(cmd);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("OK " + script_name));
}

}  // namespace

TEST_CASE("interventions equal the PyTorch reference with the change made by hand",
          "[policy][reference]") {
  CheckReferenceScript("check_interventions.py", "interventions");
}

TEST_CASE("the trace's per-domain load is upstream's load summed over the same tokens",
          "[trace][model]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const auto out = TempDir("trace_upstream_load") / "tiny.h5";
  RunTrace(m, RoutingPolicy{}, trace_test::TinyOptions(out));
  const TraceReader r(out);
  const int M = static_cast<int>(r.domains().size()), L = r.info().num_layers,
            E = r.info().num_experts;
  const Corpus corpus =
      ReadCorpus({trace_test::TinyCorpus()}, m.tokenizer.get(), m.config().vocab_size, {});
  REQUIRE(static_cast<int64_t>(corpus.documents.size()) == r.num_documents());

  // Upstream's per-forward `load` (kExpertLoad), one forward pass per document.
  struct LoadSum : RoutingObserver {
    std::vector<int64_t> load;
    int domain = 0, layers = 0, experts = 0;
    std::vector<HookRequest> Requests() const override { return {{HookSite::kExpertLoad, -1}}; }
    void OnEvent(const HookEvent& e) override {
      for (int x = 0; x < experts; ++x) {
        load[(static_cast<size_t>(domain) * layers + e.layer) * experts + x] += e.ids[x];
        load[(static_cast<size_t>(all_row) * layers + e.layer) * experts + x] += e.ids[x];
      }
    }
    int all_row = 0;
  } sum;
  sum.layers = L;
  sum.experts = E;
  sum.all_row = M;
  sum.load.assign(static_cast<size_t>(M + 1) * L * E, 0);
  {
    HookGuard guard = m.model->hooks().Add(&sum);
    // The trace cut long documents into windows of the context length; so does this loop.
    for (size_t d = 0; d < corpus.documents.size(); ++d) {
      const CorpusDocument& doc = corpus.documents[d];
      sum.domain = doc.domain;
      for (const TraceWindow& w : SplitDocument(static_cast<int64_t>(d),
                                                static_cast<int64_t>(doc.ids.size()), {256, 256})) {
        REQUIRE(w.record_begin == w.begin);
        m.model->Forward(Batch::Single(
            std::vector<int32_t>(doc.ids.begin() + w.begin, doc.ids.begin() + w.end)));
      }
    }
  }
  CHECK(r.ReadStats().load() == sum.load);
}

TEST_CASE("random-r equals the PyTorch reference with the draws made by hand",
          "[policy][reference][random-r]") {
  CheckReferenceScript("check_random_r.py", "random_r_reference");
}

namespace {

// The executed top-k ids and the router logits of every layer, per token of the batch.
struct IdsCapture : RoutingObserver {
  std::map<int, std::vector<int32_t>> ids;
  std::map<int, std::vector<float>> logits;
  int k = 0, experts = 0;
  std::vector<HookRequest> Requests() const override {
    return {{HookSite::kTopkIds, -1}, {HookSite::kRouterLogits, -1}};
  }
  void OnEvent(const HookEvent& e) override {
    if (e.site == HookSite::kTopkIds) {
      k = static_cast<int>(e.cols);
      ids[e.layer].insert(ids[e.layer].end(), e.ids, e.ids + e.rows * e.cols);
    } else {
      experts = static_cast<int>(e.cols);
      logits[e.layer].insert(logits[e.layer].end(), e.values, e.values + e.rows * e.cols);
    }
  }
};

// Three documents of different lengths as rows of one padded batch (or a batch of their own).
Batch Documents(const std::vector<int>& which) {
  Batch b;
  b.batch_size = static_cast<int64_t>(which.size());
  b.seq_len = 0;
  for (int d : which) b.seq_len = std::max<int64_t>(b.seq_len, 9 + 7 * d);
  for (int d : which)
    for (int64_t s = 0; s < b.seq_len; ++s) {
      const bool real = s < 9 + 7 * d;
      b.ids.push_back(real ? static_cast<int32_t>((13 * s + 29 * d + 3) % 200) + 5 : 0);
      b.mask.push_back(real ? 1 : 0);
      b.positions.push_back(real ? static_cast<int32_t>(s) : 1);
      b.documents.push_back(real ? d : -1);
    }
  return b;
}

// Routing of the real tokens of `batch`, [layer][token][k], under `policy`.
std::vector<std::vector<std::vector<int32_t>>> RealRouting(
    const LoadedModel& m, const Batch& batch, const RoutingPolicy& policy,
    std::vector<std::vector<float>>* logits) {
  IdsCapture capture;
  {
    HookGuard guard = m.model->hooks().Add(&capture);
    m.model->Forward(batch, nullptr, &policy);
  }
  std::vector<std::vector<std::vector<int32_t>>> out(capture.ids.size());
  if (logits) logits->assign(capture.ids.size(), {});
  for (auto& [layer, ids] : capture.ids)
    for (int64_t t = 0; t < batch.tokens(); ++t) {
      if (!batch.mask[static_cast<size_t>(t)]) continue;
      out[static_cast<size_t>(layer)].emplace_back(ids.begin() + t * capture.k,
                                                   ids.begin() + (t + 1) * capture.k);
      if (logits)
        (*logits)[static_cast<size_t>(layer)].insert(
            (*logits)[static_cast<size_t>(layer)].end(),
            capture.logits[layer].begin() + t * capture.experts,
            capture.logits[layer].begin() + (t + 1) * capture.experts);
    }
  return out;
}

}  // namespace

TEST_CASE("random-r runs k of each token's k + r best experts, whatever the batch or threads",
          "[policy][random-r][model]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const int L = c.num_hidden_layers, E = c.num_experts, K = c.num_selects;
  for (int r : {1, 3}) {
    INFO("r = " << r);
    RoutingPolicy policy;
    policy.SetRandomR(-1, r, 2024, L);
    policy.Validate(c);
    std::vector<std::vector<float>> logits;
    const auto together = RealRouting(m, Documents({0, 1, 2}), policy, &logits);
    int not_top_r = 0, tokens = 0;
    for (int l = 0; l < L; ++l)
      for (size_t t = 0; t < together[static_cast<size_t>(l)].size(); ++t) {
        const float* row = logits[static_cast<size_t>(l)].data() + t * E;
        std::vector<int32_t> order(static_cast<size_t>(E));
        for (int e = 0; e < E; ++e) order[static_cast<size_t>(e)] = e;
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return row[a] > row[b]; });
        const std::vector<int32_t>& ran = together[static_cast<size_t>(l)][t];
        // k experts, all among the k + r best, in logit order: r of the candidates left out.
        REQUIRE(static_cast<int>(ran.size()) == K);
        std::vector<int32_t> pool(order.begin(), order.begin() + std::min(K + r, E));
        std::vector<int> at;
        for (int32_t e : ran) {
          const auto it = std::find(pool.begin(), pool.end(), e);
          REQUIRE(it != pool.end());
          at.push_back(static_cast<int>(it - pool.begin()));
        }
        CHECK(std::is_sorted(at.begin(), at.end()));
        CHECK(std::adjacent_find(at.begin(), at.end()) == at.end());
        // Top-r would run ranks r .. r + k - 1 exactly.
        if (at.front() != r) ++not_top_r;
        ++tokens;
      }
    CHECK(not_top_r > tokens / 4);

    // Each document alone, with one thread or two, and token by token through the KV cache.
    for (int threads : {1, 2}) {
      SetNumThreads(threads);
      std::vector<std::vector<std::vector<int32_t>>> alone(static_cast<size_t>(L));
      for (int d : {0, 1, 2}) {
        const auto one = RealRouting(m, Documents({d}), policy, nullptr);
        for (int l = 0; l < L; ++l)
          alone[static_cast<size_t>(l)].insert(alone[static_cast<size_t>(l)].end(),
                                               one[static_cast<size_t>(l)].begin(),
                                               one[static_cast<size_t>(l)].end());
      }
      CHECK(alone == together);
    }
    SetNumThreads(1);
    const Batch doc = Documents({2});
    KvCache cache(c, 1, 4);
    IdsCapture stepwise;
    {
      HookGuard guard = m.model->hooks().Add(&stepwise);
      for (int64_t s = 0; s < doc.seq_len; ++s) {
        Batch step = Batch::Single({doc.ids[static_cast<size_t>(s)]}, static_cast<int32_t>(s));
        step.documents = {2};
        m.model->Forward(step, &cache, &policy);
      }
    }
    const auto whole = RealRouting(m, doc, policy, nullptr);
    for (int l = 0; l < L; ++l) {
      std::vector<int32_t> flat;
      for (const auto& row : whole[static_cast<size_t>(l)])
        flat.insert(flat.end(), row.begin(), row.end());
      CHECK(stepwise.ids[l] == flat);
    }
  }
}
