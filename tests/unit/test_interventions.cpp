// What leaves the engine through hooks is what `moescope forward` writes and what upstream
// computed; interventions equal the PyTorch reference changed by hand; the trace's per-domain
// loads are upstream's `load` summed over the same tokens.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "analysis/trace/trace_reader.h"
#include "analysis/run/trace_windows.h"
#include "core/hooks.h"
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

TEST_CASE("interventions equal the PyTorch reference with the change made by hand",
          "[policy][reference]") {
  const std::string script =
      (trace_test::SourceDir() / "tests/python/check_interventions.py").string();
  std::vector<std::string> args = {"OMP_NUM_THREADS=1", "/usr/bin/python3",
                                   trace_test::Quote(script), trace_test::Quote(trace_test::Cli()),
                                   trace_test::Quote(TempDir("interventions").string())};
  for (const std::filesystem::path& c :
       {GoldenDir() / "tiny_mlp_gate", GoldenDir() / "gqa_linear_gate",
        FixtureDir() / "softmax_off"})
    args.push_back(trace_test::Quote(c.string()));
  std::string cmd;
  for (const std::string& a : args) cmd.append(a).append(" ");
  const trace_test::CommandResult r = trace_test::RunCommand(cmd);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("OK check_interventions.py"));
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
