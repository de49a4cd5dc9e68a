// The hook interface: observers get views of exactly the sites they asked for, registration is
// scoped, and asking for a site the model does not produce is an error.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

#include "core/error.h"
#include "core/forward_record.h"
#include "core/hooks.h"
#include "core/linear.h"
#include "core/model_loader.h"
#include "test_paths.h"

using namespace moe;
using Catch::Matchers::Contains;

namespace {

class Counter : public RoutingObserver {
 public:
  explicit Counter(std::vector<HookRequest> requests) : requests_(std::move(requests)) {}
  std::vector<HookRequest> Requests() const override { return requests_; }
  void OnEvent(const HookEvent& e) override {
    ++events[{e.site, e.layer}];
    last = e;
    // The span lives only as long as the event: copied, so checks after the forward see it.
    if (e.tokens) {
      last_token_id.assign(e.tokens->token_id, e.tokens->token_id + e.tokens->count);
      last_position.assign(e.tokens->position, e.tokens->position + e.tokens->count);
    }
    if (e.site == HookSite::kTopkIds) ids.assign(e.ids, e.ids + e.rows * e.cols);
    if (e.site == HookSite::kExpertOutput) expert_rows += e.rows;
  }
  std::map<std::pair<HookSite, int>, int> events;
  HookEvent last;
  std::vector<int32_t> last_token_id, last_position;
  std::vector<int32_t> ids;
  int64_t expert_rows = 0;

 private:
  std::vector<HookRequest> requests_;
};

LoadedModel TinyModel() {
  return LoadModel(std::filesystem::path(MOESCOPE_SOURCE_DIR) / "tests/fixtures/tiny_moe");
}

}  // namespace

TEST_CASE("observers see only the sites and layers they asked for", "[hooks]") {
  const LoadedModel m = TinyModel();
  Counter c({{HookSite::kTopkIds, 1}, {HookSite::kExpertOutput, -1}});
  const Batch batch = Batch::Single({1, 5, 6, 7, 8});
  {
    HookGuard guard = m.model->hooks().Add(&c);
    m.model->Forward(batch);
  }
  CHECK(c.events.size() == 1 + 2);  // top-k ids of layer 1; expert outputs of layers 0 and 1
  CHECK(c.events.count({HookSite::kTopkIds, 1}) == 1);
  CHECK(c.events.count({HookSite::kTopkIds, 0}) == 0);
  CHECK(c.ids.size() == 5 * 2);
  // Every token reaches K experts: the per-expert outputs cover 2 layers x 5 tokens x K rows.
  CHECK(c.expert_rows == 2 * 5 * 2);
  // Spans describe the tokens.
  REQUIRE(c.last_token_id.size() == 5);
  CHECK(c.last_token_id[1] == 5);
  CHECK(c.last_position[4] == 4);
}

TEST_CASE("the guard removes its observer", "[hooks]") {
  const LoadedModel m = TinyModel();
  Counter c({{HookSite::kRouterLogits, -1}});
  {
    HookGuard guard = m.model->hooks().Add(&c);
    CHECK_FALSE(m.model->hooks().Empty());
  }
  CHECK(m.model->hooks().Empty());
  m.model->Forward(Batch::Single({1, 5}));
  CHECK(c.events.empty());
}

TEST_CASE("asking for a site that is not produced is an error", "[hooks][bad-input]") {
  const LoadedModel m = TinyModel();
  Counter past_end({{HookSite::kRouterLogits, 7}});
  CHECK_THROWS_WITH(m.model->hooks().Add(&past_end),
                    Contains("asked for layer 7") && Contains("has 2 layers"));
  Counter wrong_level({{HookSite::kEmbeddings, 0}});
  CHECK_THROWS_WITH(m.model->hooks().Add(&wrong_level), Contains("model-level site"));
  const LoadedModel dense = LoadModel(FixtureDir() / "dense_llama");
  Counter router({{HookSite::kRouterLogits, -1}});
  CHECK_THROWS_WITH(dense.model->hooks().Add(&router), Contains("no router"));
  CHECK(m.model->hooks().Empty());
}

TEST_CASE("a hook site has one name: the forward output's tensor name", "[hooks]") {
  CHECK(HookPointName(HookSite::kRouterLogits, 3) == "layers.3.gate_logits");
  CHECK(HookPointName(HookSite::kAttentionOutput, 0) == "layers.0.attn_out");
  CHECK(HookPointName(HookSite::kHiddenOut, 2) == "layers.2.hidden_out");
  CHECK(HookPointName(HookSite::kEmbeddings, -1) == "embeddings");
  CHECK(HookPointName(HookSite::kFinalHidden, -1) == "final_hidden");
  // Every site RecordForward writes is written under that name.
  const LoadedModel m = TinyModel();
  const Batch batch = Batch::Single({1, 5, 9});
  const std::vector<OwnedTensor> out = RecordForward(*m.model, batch, {.activations = true});
  auto has = [&](const std::string& name) {
    return std::any_of(out.begin(), out.end(),
                       [&](const OwnedTensor& t) { return t.name == name; });
  };
  for (HookSite s : {HookSite::kAttentionOutput, HookSite::kMoeInput, HookSite::kRouterLogits,
                     HookSite::kTopkIds, HookSite::kTopkWeights, HookSite::kExpertLoad,
                     HookSite::kMoeOutput, HookSite::kHiddenOut}) {
    INFO(HookPointName(s, 1));
    CHECK(has(HookPointName(s, 1)));
  }
  CHECK(has(HookPointName(HookSite::kEmbeddings, -1)));
  CHECK(has(HookPointName(HookSite::kFinalHidden, -1)));
}

TEST_CASE("a policy changes what the hooks see", "[hooks][policy]") {
  const LoadedModel m = TinyModel();
  Counter before({{HookSite::kTopkIds, 0}}), after({{HookSite::kTopkIds, 0}});
  const Batch batch = Batch::Single({1, 5, 6, 7, 8, 9, 10});
  {
    HookGuard g = m.model->hooks().Add(&before);
    m.model->Forward(batch);
  }
  // Disable layer 0's most used expert with re-routing: it never appears afterwards.
  std::map<int32_t, int> use;
  for (int32_t id : before.ids) ++use[id];
  const int32_t busiest = std::max_element(use.begin(), use.end(), [](auto& a, auto& b) {
                            return a.second < b.second;
                          })->first;
  RoutingPolicy p;
  p.layers.resize(2);
  p.layers[0].disabled = {busiest};
  {
    HookGuard g = m.model->hooks().Add(&after);
    m.model->Forward(batch, nullptr, &p);
  }
  REQUIRE(after.ids.size() == before.ids.size());
  CHECK(std::count(after.ids.begin(), after.ids.end(), busiest) == 0);
  CHECK(std::count(after.ids.begin(), after.ids.end(), -1) == 0);  // re-routed, still K each
}

TEST_CASE("resuming from a cached residual stream gives the full forward", "[engine]") {
  const LoadedModel m = TinyModel();
  const Batch batch = Batch::Single({1, 5, 6, 7, 8, 9, 10});
  const std::vector<float> full = m.model->Forward(batch);
  for (int layer : {0, 1, 2}) {
    const std::vector<float> resumed =
        m.model->ForwardFrom(batch, layer, m.model->ResidualBefore(batch, layer));
    REQUIRE(resumed.size() == full.size());
    for (size_t i = 0; i < full.size(); ++i) REQUIRE(resumed[i] == full[i]);
  }
}

namespace {

// The experts whose outputs reached the hooks, in the order they arrived.
class ExpertOrder : public RoutingObserver {
 public:
  explicit ExpertOrder(int layers) : layers_(layers) {}
  std::vector<HookRequest> Requests() const override {
    std::vector<HookRequest> r;
    for (int l = 0; l < layers_; ++l) r.push_back({HookSite::kExpertOutput, l});
    return r;
  }
  void OnEvent(const HookEvent& e) override { seen.emplace_back(e.layer, e.expert); }
  std::vector<std::pair<int, int>> seen;

 private:
  int layers_;
};

}  // namespace

TEST_CASE("the thread count changes neither the forward nor the order experts report in",
          "[engine]") {
  // The bundled model has bf16 weights, whose experts run side by side on several threads.
  const LoadedModel m =
      LoadModel(std::filesystem::path(MOESCOPE_SOURCE_DIR) / "datasets/models/default");
  std::vector<int32_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(1 + (i * 37) % (m.config().vocab_size - 1));
  const Batch batch = Batch::Single(ids);
  std::vector<std::vector<float>> hidden;
  std::vector<std::vector<std::pair<int, int>>> order;
  const int threads_before = NumThreads();
  for (const int threads : {1, 2}) {
    SetNumThreads(threads);
    ExpertOrder observer(m.config().num_hidden_layers);
    HookGuard g = m.model->hooks().Add(&observer);
    hidden.push_back(m.model->Forward(batch));
    order.push_back(observer.seen);
  }
  SetNumThreads(threads_before);
  CHECK(hidden[0] == hidden[1]);
  CHECK(order[0] == order[1]);
  CHECK(std::is_sorted(order[1].begin(), order[1].end()));  // by layer, then ascending expert
  CHECK(order[1].size() > static_cast<size_t>(m.config().num_hidden_layers));
}
