// A decode step with its threads in one parallel region (core/decode_step.h) against the general
// forward pass, which every family's PyTorch reference checks: the hidden states of every step
// must be bit-identical, for each family's quirks (sliding window, q/k norms and clipping, biases,
// shared and gated experts, dense layers, group-limited routers, Granite's multipliers), both KV
// cache types and routing policies.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/convert.h"
#include "core/decode_step.h"
#include "core/hooks.h"
#include "core/kv_cache.h"
#include "core/linear.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "test_paths.h"

using namespace moe;

namespace {

// Registered, it sends the forward pass down the general path; it asks for nothing.
class NoEvents : public RoutingObserver {
 public:
  std::vector<HookRequest> Requests() const override { return {}; }
  void OnEvent(const HookEvent&) override {}
};

// Every hidden state of a 5-token prompt and then `steps` tokens fed one at a time: [1 + steps]
// rows, the prompt's last position first.
std::vector<std::vector<float>> StepHiddens(const MoeModel& model, KvCacheType type,
                                            const RoutingPolicy* policy, bool one_region,
                                            int steps) {
  const ModelConfig& c = model.config();
  NoEvents observer;
  HookGuard guard;
  if (!one_region) guard = model.hooks().Add(&observer);
  const Batch step = Batch::Single({1}, 5);
  REQUIRE(DecodesInOneRegion(model.one_region_plan(), step, model.hooks(), policy) == one_region);

  const int32_t V = static_cast<int32_t>(c.vocab_size);
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 5; ++i) prompt.push_back((7 + 13 * i) % V);
  KvCache cache(c, 1, 5 + steps, type);
  std::vector<float> hidden = model.Forward(Batch::Single(prompt), &cache, policy);
  const int64_t H = c.hidden_size;
  std::vector<std::vector<float>> rows{{hidden.end() - H, hidden.end()}};
  for (int s = 0; s < steps; ++s) {
    const int32_t token = (3 + 29 * s) % V;
    rows.push_back(model.Forward(Batch::Single({token}, static_cast<int32_t>(cache.length())),
                                 &cache, policy));
  }
  return rows;
}

// The fixture's weights rounded to bf16 (the one-region path streams 16-bit weights only).
LoadedModel LoadBf16(const std::string& fixture) {
  const std::filesystem::path dir = TempDir("decode_step_" + fixture) / "model";
  ConvertCheckpointToSafetensors(FixtureDir() / fixture, dir, DType::kBF16);
  return LoadModel(dir);
}

// Restores the thread count a test changed.
struct ThreadCount {
  explicit ThreadCount(int threads) : before(NumThreads()) { SetNumThreads(threads); }
  ~ThreadCount() { SetNumThreads(before); }
  int before;
};

void RequireSameSteps(const MoeModel& model, KvCacheType type, const RoutingPolicy* policy,
                      int steps) {
  const auto region = StepHiddens(model, type, policy, /*one_region=*/true, steps);
  const auto general = StepHiddens(model, type, policy, /*one_region=*/false, steps);
  REQUIRE(region.size() == general.size());
  for (size_t s = 0; s < region.size(); ++s) {
    INFO("step " << s);
    REQUIRE(region[s] == general[s]);
  }
}

}  // namespace

TEST_CASE("a decode step in one parallel region equals the general pass bit for bit",
          "[decode_step][families]") {
  const ThreadCount two(2);
  for (const char* fixture :
       {"tiny_moe", "mixtral_window", "llama_moe_v2_scale", "olmoe_clip", "qwen2_moe_shared",
        "qwen2_moe_sparse_step", "qwen3_moe", "granitemoe", "dots1_router", "generation_gqa"}) {
    SECTION(fixture) {
      const LoadedModel m = LoadBf16(fixture);
      // mixtral_window's window is shorter than the 5 + 12 tokens, so later steps slide it.
      RequireSameSteps(*m.model, KvCacheType::kF32, nullptr, 12);
      RequireSameSteps(*m.model, KvCacheType::kBF16, nullptr, 4);
    }
  }
}

TEST_CASE("routing policies act the same in the one-region decode step", "[decode_step][routing]") {
  const ThreadCount two(2);
  const LoadedModel m = LoadBf16("qwen2_moe_shared");
  const ModelConfig& c = m.config();
  const int L = c.num_hidden_layers;
  SECTION("disabled experts, dropped and renormalized") {
    const RoutingPolicy p =
        RoutingPolicy::Disabling({{0, 1}, {2, 0}}, DisableMode::kDropRenormalize, L);
    RequireSameSteps(*m.model, KvCacheType::kF32, &p, 6);
  }
  SECTION("a larger k, random exclusions and no shared expert") {
    RoutingPolicy p;
    p.SetTopK(-1, c.num_selects + 1, L).SetRandomR(-1, 1, 42, L).DisableSharedExpert(0, L);
    RequireSameSteps(*m.model, KvCacheType::kF32, &p, 6);
  }
  SECTION("dynamic k") {
    RoutingPolicy p;
    p.SetTopP(-1, 0.5f, L);
    RequireSameSteps(*m.model, KvCacheType::kF32, &p, 6);
  }
}

TEST_CASE("the one-region decode step is taken only where it is exact", "[decode_step]") {
  const ThreadCount two(2);
  const LoadedModel bf16 = LoadBf16("tiny_moe");
  const MoeModel& model = *bf16.model;
  const Batch one = Batch::Single({1}, 3);
  CHECK(DecodesInOneRegion(model.one_region_plan(), one, model.hooks(), nullptr));
  // A prompt of several tokens, or two sequences, take the general path.
  CHECK_FALSE(
      DecodesInOneRegion(model.one_region_plan(), Batch::Single({1, 2}), model.hooks(), nullptr));
  CHECK_FALSE(DecodesInOneRegion(model.one_region_plan(), Batch::FromRows({{1}, {2}}, {{1}, {1}}),
                                 model.hooks(), nullptr));
  // Forced routes may name an expert twice.
  RoutingPolicy forced;
  forced.forced.push_back({-1, -1, -1, {0, 1}});
  CHECK_FALSE(DecodesInOneRegion(model.one_region_plan(), one, model.hooks(), &forced));
  // f32 weights go to OpenBLAS.
  const LoadedModel f32 = LoadModel(FixtureDir() / "tiny_moe");
  REQUIRE(f32.model->weights().layers[0].q.dtype == DType::kF32);
  CHECK_FALSE(DecodesInOneRegion(f32.model->one_region_plan(), one, model.hooks(), nullptr));
  // One thread has nobody to meet.
  SetNumThreads(1);
  CHECK_FALSE(DecodesInOneRegion(model.one_region_plan(), one, model.hooks(), nullptr));
}
