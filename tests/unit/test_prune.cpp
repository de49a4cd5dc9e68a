// Expert importance scores, pruning plans and pruned / merged checkpoints (analysis/prune/,
// docs/pruning.md): scores against brute force through whole forward passes, a pruned
// checkpoint against the engine with the same experts disabled (reroute) and against the PyTorch
// references, merged weights against a hand-worked example, and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "analysis/prune/importance_file.h"
#include "analysis/prune/prune_checkpoint.h"
#include "analysis/prune/prune_curve.h"
#include "analysis/stats/multiplicity.h"
#include "core/heads.h"
#include "core/safetensors_file.h"
#include "tests/unit/reference_case.h"
#include "tests/unit/test_paths.h"
#include "tests/unit/trace_test_util.h"

namespace fs = std::filesystem;
using namespace moe;

namespace {

// An importance file for `c` whose every score ranks the experts of layer l by (7e + 3l) mod E,
// and whose routed counts are e + 1.
ExpertImportance SyntheticImportance(const ModelConfig& c) {
  ExpertImportance r;
  r.layers = c.num_hidden_layers;
  r.experts = c.num_experts;
  r.top_k = c.num_selects;
  for (int l = 0; l < r.layers; ++l) r.moe_layer.push_back(c.IsMoeLayer(l) ? 1 : 0);
  r.documents = 4;
  r.tokens = 100;
  r.scores.assign(kImportanceScores, {});
  for (int l = 0; l < r.layers; ++l)
    for (int e = 0; e < r.experts; ++e) {
      const double v = (7 * e + 3 * l) % r.experts;
      for (auto& s : r.scores) s.push_back({v, v - 0.5, v + 0.5});
      r.routed.push_back(e + 1);
    }
  return r;
}

std::vector<float> Logits(const LoadedModel& m, const Batch& batch, const RoutingPolicy* policy) {
  const std::vector<float> hidden = m.model->Forward(batch, nullptr, policy);
  return LmLogits(*m.model, hidden.data(), batch.tokens());
}

double MaxRelativeExcess(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) /
                                (testing::kAbsTol + testing::kRelTol * std::fabs(double(want[i]))));
  return worst;  // <= 1 within tolerance
}

// Prunes fixture `name` by the synthetic scores at `ratio` into a temporary folder holding the
// fixture's inputs.json and the engine's logits of the pruned model (engine_logits.safetensors).
struct PrunedFixture {
  fs::path in, out;
  PrunePlan plan;
  PruneWriteResult result;
};
PrunedFixture PruneFixture(const std::string& name, double ratio, bool merge = false) {
  PrunedFixture f;
  f.in = FixtureDir() / name;
  f.out = TempDir("prune-" + name + (merge ? "-merge" : ""));
  const ModelConfig c = ModelConfig::FromFile(f.in / "config.json");
  const ExpertImportance imp = SyntheticImportance(c);
  f.plan = PlanPruning(imp, {ParsePruneCriterion("reap", "--score"), ratio, false, 0});
  f.result = WritePrunedCheckpoint(f.in, f.plan, f.out, {merge, imp.routed});
  fs::copy_file(f.in / "inputs.json", f.out / "inputs.json");
  return f;
}

// Records the MoE block output [T, H] of one layer.
struct MoeOutputRecorder : RoutingObserver {
  int layer = 0;
  std::vector<float> out;
  std::vector<HookRequest> Requests() const override { return {{HookSite::kMoeOutput, layer}}; }
  void OnEvent(const HookEvent& e) override { out.assign(e.values, e.values + e.rows * e.cols); }
};

Corpus SmallCorpus(int vocab) {
  Corpus corpus;
  corpus.domains = {"a", "b"};
  uint64_t x = 12345;
  for (int d = 0; d < 6; ++d) {
    CorpusDocument doc;
    doc.source_id = "doc" + std::to_string(d);
    doc.domain = static_cast<int16_t>(d % 2);
    doc.ids.push_back(1);
    for (int t = 0; t < 12 + 3 * d; ++t) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      doc.ids.push_back(3 + static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(vocab - 3)));
    }
    corpus.documents.push_back(std::move(doc));
  }
  return corpus;
}

fs::path E2eMixtral() {
  return FixtureDir() / "families_e2e" / "mixtral";
}

}  // namespace

TEST_CASE("importance: frequencies sum to k, gate weights to 1, every token counted once",
          "[prune]") {
  const LoadedModel m = LoadModel(E2eMixtral());
  const ModelConfig& c = m.config();
  const Corpus corpus = SmallCorpus(c.vocab_size);
  ImportanceOptions o;
  o.bootstrap = 50;
  o.windows = {8, 5};  // overlapping windows: context tokens are run again but not counted
  const ExpertImportance r = MeasureExpertImportance(*m.model, corpus, o);
  CHECK(r.tokens == corpus.tokens());
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    double freq = 0, gate = 0;
    int64_t routed = 0;
    for (int e = 0; e < c.num_experts; ++e) {
      const ScoreValue& f = r.At(ImportanceScore::kFrequency, l, e);
      freq += f.value;
      gate += r.At(ImportanceScore::kMeanGate, l, e).value;
      routed += r.routed[static_cast<size_t>(l) * c.num_experts + e];
      if (r.routed[static_cast<size_t>(l) * c.num_experts + e] > 0) {
        CHECK(f.ci_low <= f.value);
        CHECK(f.value <= f.ci_high);
        CHECK(r.At(ImportanceScore::kMaxActivation, l, e).value > 0);
      }
      CHECK(std::isnan(r.At(ImportanceScore::kMaxActivation, l, e).ci_low));
    }
    CHECK(freq == Approx(c.num_selects).epsilon(1e-12));
    CHECK(gate == Approx(1.0).epsilon(1e-5));  // Mixtral renormalizes its top-k weights
    CHECK(routed == corpus.tokens() * c.num_selects);
  }
}

TEST_CASE("importance: REAP and output change equal whole forward passes with the expert dropped",
          "[prune]") {
  const LoadedModel m = LoadModel(E2eMixtral());
  const ModelConfig& c = m.config();
  const Corpus corpus = SmallCorpus(c.vocab_size);
  ImportanceOptions o;
  o.bootstrap = 0;
  const ExpertImportance r = MeasureExpertImportance(*m.model, corpus, o);
  // Brute force, one document per forward pass (each fits one window): the layer's MoE output
  // with no policy, with expert e dropped (weight 0: the change is g x y, so its norm is the REAP
  // term; Mixtral's scale factor is 1) and with e re-routed (the NAEE change).
  const int layer = 1;
  MoeOutputRecorder rec;
  rec.layer = layer;
  HookGuard guard = m.model->hooks().Add(&rec);
  for (int e : {0, 3, 6}) {
    double reap = 0, change = 0;
    int64_t routed = 0, tokens = 0;
    for (const CorpusDocument& doc : corpus.documents) {
      const Batch batch = Batch::Single(doc.ids);
      m.model->Forward(batch);
      const std::vector<float> base = rec.out;
      const RoutingPolicy drop =
          RoutingPolicy::Disabling({{layer, e}}, DisableMode::kDrop, c.num_hidden_layers);
      m.model->Forward(batch, nullptr, &drop);
      const std::vector<float> dropped = rec.out;
      const RoutingPolicy reroute =
          RoutingPolicy::Disabling({{layer, e}}, DisableMode::kReroute, c.num_hidden_layers);
      m.model->Forward(batch, nullptr, &reroute);
      const std::vector<float> rerouted = rec.out;
      const int64_t h = c.hidden_size;
      for (int64_t t = 0; t < batch.tokens(); ++t) {
        double d2 = 0, r2 = 0;
        for (int64_t j = 0; j < h; ++j) {
          d2 += std::pow(double(base[t * h + j]) - dropped[t * h + j], 2);
          r2 += std::pow(double(base[t * h + j]) - rerouted[t * h + j], 2);
        }
        if (d2 > 0) reap += std::sqrt(d2), ++routed;
        change += r2;
        ++tokens;
      }
    }
    INFO("expert " << e);
    CHECK(routed == r.routed[static_cast<size_t>(layer) * c.num_experts + e]);
    CHECK(r.At(ImportanceScore::kReap, layer, e).value == Approx(reap / routed).epsilon(1e-4));
    CHECK(r.At(ImportanceScore::kOutputChange, layer, e).value ==
          Approx(change / tokens).epsilon(1e-4));
  }
}

TEST_CASE("importance file: written and read back unchanged; bad files refused", "[prune]") {
  const ModelConfig c = ModelConfig::FromFile(FixtureDir() / "mixtral_window" / "config.json");
  ExpertImportance imp = SyntheticImportance(c);
  imp.scores[static_cast<int>(ImportanceScore::kMaxActivation)][3].ci_low = NAN;
  const fs::path dir = TempDir("importance-file");
  WriteImportance(dir / "imp.json", imp);
  const ExpertImportance back = ReadImportance(dir / "imp.json");
  CHECK(back.routed == imp.routed);
  for (int s = 0; s < kImportanceScores; ++s)
    for (size_t i = 0; i < imp.scores[s].size(); ++i) {
      CHECK(back.scores[s][i].value == imp.scores[s][i].value);
      CHECK(std::isnan(back.scores[s][i].ci_low) == std::isnan(imp.scores[s][i].ci_low));
    }
  CHECK(fs::exists(dir / "imp.json.csv"));
  std::ofstream(dir / "bad.json") << R"({"format": "moescope-importance", "version": 1,
    "layers": 2, "experts": 8, "top_k": 2, "documents": 1, "tokens": 1, "bootstrap": 0,
    "ci_level": 0.95, "moe_layers": [1, 1], "routed": [[1, 2], [3, 4]], "scores": {}})";
  CHECK_THROWS_WITH(ReadImportance(dir / "bad.json"),
                    Catch::Contains("bad.json") && Catch::Contains("routed[0] must list 8"));
}

TEST_CASE("prune plan: lowest scores per layer or globally, random draws, bad ratios", "[prune]") {
  const ModelConfig c = ModelConfig::FromFile(FixtureDir() / "mixtral_window" / "config.json");
  const ExpertImportance imp = SyntheticImportance(c);  // E = 8, k = 2, L = 2
  const PrunePlan p = PlanPruning(imp, {ParsePruneCriterion("frequency", "--score"), 0.25});
  // Layer 0 scores 7e mod 8: experts 0 (0) and 7 (1) are lowest; layer 1 (7e + 3) mod 8:
  // experts 3 (0) and 2 (1).
  CHECK(p.removed[0] == std::vector<int32_t>{0, 7});
  CHECK(p.removed[1] == std::vector<int32_t>{2, 3});
  CHECK(p.kept[0] == std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  const PrunePlan g = PlanPruning(imp, {ParsePruneCriterion("reap", "--score"), 0.5, true});
  CHECK(g.RemovedCount() == 8);
  const PrunePlan r1 = PlanPruning(imp, {ParsePruneCriterion("random", "--score"), 0.5, false, 9});
  const PrunePlan r2 = PlanPruning(imp, {ParsePruneCriterion("random", "--score"), 0.5, false, 9});
  CHECK(r1.removed == r2.removed);
  CHECK(r1.removed[0].size() == 4);
  CHECK(r1.removed[1].size() == 4);

  const PruneCriterion reap = ParsePruneCriterion("reap", "--score");
  for (double bad : {0.0, 1.0, -0.25, 1.5, std::nan("")})
    CHECK_THROWS_WITH(PlanPruning(imp, {reap, bad}),
                      Catch::StartsWith("--ratio: must lie in (0, 1)"));
  CHECK_THROWS_WITH(PlanPruning(imp, {reap, 0.9}), Catch::Contains("leaves 1, fewer than k = 2"));
  CHECK_THROWS_WITH(PlanPruning(imp, {reap, 0.01}), Catch::Contains("removes none"));
  CHECK_THROWS_WITH(ParsePruneCriterion("loudness", "--score"),
                    Catch::StartsWith("--score: unknown score 'loudness'"));
  ExpertImportance unmeasured = imp;
  for (ScoreValue& v : unmeasured.scores[static_cast<int>(ImportanceScore::kOutputChange)])
    v.value = NAN;
  CHECK_THROWS_WITH(
      PlanPruning(unmeasured, {ParsePruneCriterion("output_change", "--score"), 0.25}),
      Catch::Contains("output_change was not measured"));
}

TEST_CASE("prune curve policies: sets of one size share their random controls", "[prune]") {
  const ModelConfig c = ModelConfig::FromFile(FixtureDir() / "mixtral_window" / "config.json");
  const ExpertImportance imp = SyntheticImportance(c);  // E = 8, k = 2, L = 2
  const std::vector<PruneCriterion> criteria = {ParsePruneCriterion("reap", "--score"),
                                                ParsePruneCriterion("random", "--score")};
  auto disabled = [](const AblationPolicy& p, size_t l) {
    return std::set<int32_t>(p.policy.layers[l].disabled.begin(),
                             p.policy.layers[l].disabled.end());
  };
  for (bool global : {false, true}) {
    const std::vector<AblationPolicy> policies =
        PruneCurvePolicies(c, imp, criteria, {0.25, 0.5}, global, 2, 11);
    std::map<std::string, std::vector<const AblationPolicy*>> controls_of;
    for (const AblationPolicy& p : policies)
      if (p.kind == "random_control") controls_of[p.control_of].push_back(&p);
    int sets = 0;
    for (const AblationPolicy& set : policies) {
      if (set.kind != "prune") continue;
      ++sets;
      INFO(set.name << (global ? " global" : " per layer"));
      const auto& controls = controls_of[set.control_of];
      REQUIRE(controls.size() == 2);
      for (const AblationPolicy* control : controls)
        for (size_t l = 0; l < 2; ++l) {
          CHECK(disabled(*control, l).size() == disabled(set, l).size());
          const bool same_layer = disabled(*control, l) == disabled(set, l);
          if (l == 1) CHECK_FALSE((same_layer && disabled(*control, 0) == disabled(set, 0)));
        }
    }
    CHECK(sets == 4);
    // Per layer, both scores remove 2 and 4 experts of every layer: one draw per ratio.
    if (!global) CHECK(controls_of.size() == 2);
  }
}

TEST_CASE("pruned checkpoint = the engine with those experts disabled (reroute) = PyTorch",
          "[prune]") {
  // Routers whose weights depend only on the kept experts: softmax then renormalized (Mixtral,
  // Qwen3, OLMoE and Qwen2 with norm_topk_prob), top-k of logits then softmax (Granite's fused
  // experts, LLaMA-MoE's linear gate with scale factor 4).
  for (const std::string name : {"mixtral_window", "qwen3_moe", "olmoe_norm_bin", "granitemoe",
                                 "generation_gqa", "qwen2_moe_sparse_step"}) {
    INFO("fixture " << name);
    const PrunedFixture f = PruneFixture(name, 0.25);
    CHECK(f.result.equals_reroute);
    CHECK(f.result.experts_after ==
          f.result.experts_before - static_cast<int>(f.plan.removed.back().size()));
    const LoadedModel full = LoadModel(f.in), pruned = LoadModel(f.out);
    CHECK(pruned.config().num_experts == f.result.experts_after);
    const Batch batch = testing::BatchFromInputs(testing::ReadJson(f.in / "inputs.json"));
    const RoutingPolicy policy = RoutingPolicy::Disabling(
        f.plan.RemovedRefs(), DisableMode::kReroute, full.config().num_hidden_layers);
    policy.Validate(full.config());
    const std::vector<float> got = Logits(pruned, batch, nullptr);
    CHECK(MaxRelativeExcess(got, Logits(full, batch, &policy)) <= 1.0);
    // Removing experts changes the model: the comparison above is not vacuous.
    CHECK(MaxRelativeExcess(got, Logits(full, batch, nullptr)) > 1.0);

    const int64_t v = full.config().vocab_size;
    const OwnedTensor logits = MakeF32Tensor("logits", {batch.tokens(), v}, got.data());
    WriteSafetensors((f.out / "engine_logits.safetensors").string(), {logits});
    const trace_test::CommandResult py = trace_test::RunCommand(
        "OMP_NUM_THREADS=1 /usr/bin/python3 " +
        trace_test::Quote(
            (trace_test::SourceDir() / "tests/python/check_prune_reference.py").string()) +
        " " + trace_test::Quote(f.out.string()) + " " +
        trace_test::Quote((f.out / "engine_logits.safetensors").string()));
    INFO(py.output);
    CHECK(py.status == 0);
  }
}

TEST_CASE("pruned checkpoint of a softmax router without renormalization: valid, flagged",
          "[prune]") {
  const PrunedFixture f = PruneFixture("olmoe_clip", 0.25);
  CHECK_FALSE(f.result.equals_reroute);
  const LoadedModel pruned = LoadModel(f.out);
  const Batch batch = testing::BatchFromInputs(testing::ReadJson(f.in / "inputs.json"));
  const std::vector<float> got = Logits(pruned, batch, nullptr);
  const OwnedTensor logits =
      MakeF32Tensor("logits", {batch.tokens(), pruned.config().vocab_size}, got.data());
  WriteSafetensors((f.out / "engine_logits.safetensors").string(), {logits});
  const trace_test::CommandResult py = trace_test::RunCommand(
      "OMP_NUM_THREADS=1 /usr/bin/python3 " +
      trace_test::Quote(
          (trace_test::SourceDir() / "tests/python/check_prune_reference.py").string()) +
      " " + trace_test::Quote(f.out.string()) + " " +
      trace_test::Quote((f.out / "engine_logits.safetensors").string()));
  INFO(py.output);
  CHECK(py.status == 0);
}

TEST_CASE("merge: hand-worked router similarity and frequency-weighted average", "[prune]") {
  // Router rows (H = 2): e0 (1, 0), e1 (0, 1), e2 (1, 1), e3 (-1, 0). e2 is at 45 degrees from
  // both kept experts (cosine 0.7071 each; the tie goes to e0); e3 has cosine -1 with e0 and 0
  // with e1, so it joins e1.
  const std::vector<float> router = {1, 0, 0, 1, 1, 1, -1, 0};
  const auto m = MergeTargets(0, router, 2, {2, 3}, {0, 1});
  REQUIRE(m.size() == 2);
  CHECK(m[0].into == 0);
  CHECK(m[0].similarity == Approx(std::sqrt(0.5)));
  CHECK(m[1].into == 1);
  CHECK(m[1].similarity == Approx(0.0).margin(1e-12));
  // Members (1, 2), (3, 4), (5, 6) routed 1, 1 and 2 times: ((1 + 3 + 10) / 4, (2 + 4 + 12) / 4).
  const float a[] = {1, 2}, b[] = {3, 4}, c[] = {5, 6};
  CHECK(WeightedAverage({a, b, c}, {1, 1, 2}, 2) == std::vector<float>{3.5f, 4.5f});
  CHECK(WeightedAverage({a, c}, {0, 0}, 2) == std::vector<float>{3.0f, 4.0f});  // none routed
}

TEST_CASE("merge: a merged checkpoint's experts are the frequency-weighted group averages",
          "[prune]") {
  const PrunedFixture f = PruneFixture("mixtral_window", 0.25, true);
  CHECK_FALSE(f.result.equals_reroute);
  const Checkpoint in(f.in), out(f.out);
  const ModelConfig c = ModelConfig::FromFile(f.in / "config.json");
  REQUIRE(f.result.merges.size() == 4);
  for (const MergeAssignment& a : f.result.merges) {
    // The target is the kept expert whose router row is most similar, by brute force.
    const auto router = testing::AsFloats(
        *in.Find("model.layers." + std::to_string(a.layer) + ".block_sparse_moe.gate.weight"));
    const int64_t h = c.hidden_size;
    auto cosine = [&](int x, int y) {
      double d = 0, nx = 0, ny = 0;
      for (int64_t i = 0; i < h; ++i) {
        d += router[x * h + i] * router[y * h + i];
        nx += router[x * h + i] * router[x * h + i];
        ny += router[y * h + i] * router[y * h + i];
      }
      return d / std::sqrt(nx * ny);
    };
    for (int32_t k : f.plan.kept[a.layer]) CHECK(cosine(a.removed, k) <= cosine(a.removed, a.into));
  }
  for (int l = 0; l < c.num_hidden_layers; ++l)
    for (size_t i = 0; i < f.plan.kept[l].size(); ++i) {
      const int32_t k = f.plan.kept[l][i];
      std::vector<int32_t> group{k};
      for (const MergeAssignment& a : f.result.merges)
        if (a.layer == l && a.into == k) group.push_back(a.removed);
      for (const char* w : {"w1", "w2", "w3"}) {
        auto name = [&](int e) {
          return "model.layers." + std::to_string(l) + ".block_sparse_moe.experts." +
                 std::to_string(e) + "." + w + ".weight";
        };
        const auto got = testing::AsFloats(*out.Find(name(static_cast<int>(i))));
        std::vector<double> want(got.size(), 0.0);
        double total = 0;
        for (int32_t e : group) total += e + 1;  // the synthetic counts
        for (int32_t e : group) {
          const auto x = testing::AsFloats(*in.Find(name(e)));
          for (size_t j = 0; j < x.size(); ++j) want[j] += (e + 1) / total * x[j];
        }
        INFO("layer " << l << " expert " << k << " " << w << ", group of " << group.size());
        for (size_t j = 0; j < got.size(); ++j) REQUIRE(got[j] == Approx(want[j]).margin(1e-6));
      }
    }
  CHECK(LoadModel(f.out).config().num_experts == 6);
}

TEST_CASE("prune: refused models, plans and folders; the CLI's one-line errors", "[prune]") {
  {
    const fs::path dots = FixtureDir() / "dots1_router";
    const ModelConfig c = ModelConfig::FromFile(dots / "config.json");
    const PrunePlan p = PlanPruning(SyntheticImportance(c), {{}, 0.25});
    CHECK_THROWS_WITH(WritePrunedCheckpoint(dots, p, TempDir("prune-dots"), {}),
                      Catch::Contains("config.json: n_group is 4"));
  }
  {
    const fs::path mlp = FixtureDir() / "uneven_experts";  // LLaMA-MoE, MLP gate
    const ModelConfig c = ModelConfig::FromFile(mlp / "config.json");
    const PrunePlan p = PlanPruning(SyntheticImportance(c), {{}, 0.25});
    CHECK_THROWS_WITH(WritePrunedCheckpoint(mlp, p, TempDir("prune-mlp"), {}),
                      Catch::Contains("gate_network is \"mlp\""));
  }
  const fs::path mixtral = FixtureDir() / "mixtral_window";
  const ModelConfig c = ModelConfig::FromFile(mixtral / "config.json");
  ExpertImportance imp = SyntheticImportance(c);
  // Global ranking that takes more from layer 0 than from layer 1 cannot be one config count.
  for (int e = 0; e < 8; ++e) imp.scores[static_cast<int>(ImportanceScore::kReap)][e].value = -1;
  const PrunePlan uneven = PlanPruning(imp, {ParsePruneCriterion("reap", "--score"), 0.25, true});
  CHECK_FALSE(uneven.Uniform());
  CHECK_THROWS_WITH(WritePrunedCheckpoint(mixtral, uneven, TempDir("prune-uneven"), {}),
                    Catch::StartsWith("--global: removed different numbers"));
  const PrunePlan p = PlanPruning(imp, {ParsePruneCriterion("frequency", "--score"), 0.25});
  CHECK_THROWS_WITH(WritePrunedCheckpoint(mixtral, p, mixtral, {}),
                    Catch::Contains("is the input folder"));

  const fs::path dir = TempDir("prune-cli");
  WriteImportance(dir / "imp.json", SyntheticImportance(c));
  auto run = [&](const std::string& args) {
    return trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " prune " +
                                  trace_test::Quote(mixtral.string()) + " --importance " +
                                  trace_test::Quote((dir / "imp.json").string()) + " -o " +
                                  trace_test::Quote((dir / "out").string()) + " " + args);
  };
  for (auto [args, message] :
       {std::pair{"--score reap --ratio 1.5", "--ratio: must lie in (0, 1), got 1.5"},
        {"--score reap --ratio 0.9", "fewer than k = 2"},
        {"--score loudness --ratio 0.25", "--score: unknown score 'loudness'"}}) {
    const trace_test::CommandResult r = run(args);
    INFO(args << ": " << r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
  const trace_test::CommandResult ok = run("--score reap --ratio 0.5 --merge");
  INFO(ok.output);
  CHECK(ok.status == 0);
  CHECK(LoadModel(dir / "out").config().num_experts == 4);
}

TEST_CASE("prune curve: a set against its random controls, per domain, with BH q-values",
          "[prune]") {
  // Three documents (domains a, b, a) of 2, 1 and 3 scored tokens.
  ScoredTokens t;
  t.domains = {"a", "b"};
  t.doc_domain = {0, 1, 0};
  t.doc_offset = {0, 2, 3, 6};
  AblationResult set, c1, c2, other;
  set.name = "reap-25%", set.kind = "prune";
  set.delta_nll = {1, 1, 4, 2, 2, 2};
  c1.name = "reap-25%/random0", c1.kind = "random_control", c1.control_of = set.name;
  c1.delta_nll = {0, 2, 1, 1, 1, 1};
  c2 = c1;
  c2.name = "reap-25%/random1";
  c2.delta_nll = {2, 2, 3, 1, 1, 4};
  other.name = "none", other.kind = "none";
  const auto rows = ComparePruneToRandom({other, set, c1, c2}, t, 200, 7, 0.95);
  REQUIRE(rows.size() == 3);  // a, b, all
  // Domain a: set 1+1+2+2+2 = 8 over 5 tokens; controls (3+3)/2... c1: 0+2+1+1+1 = 5,
  // c2: 2+2+1+1+4 = 10, mean 7.5; difference 0.5 / 5.
  CHECK(rows[0].set_delta_nll == Approx(8.0 / 5));
  CHECK(rows[0].random_delta_nll == Approx(7.5 / 5));
  CHECK(rows[0].difference.value == Approx(0.1));
  CHECK(rows[1].difference.value == Approx(4 - 2.0));  // b: 4 against (1 + 3) / 2
  CHECK(rows[2].difference.value == Approx((12 - 9.5) / 6));
  CHECK(rows[1].controls == 2);
  std::vector<double> p;
  for (const auto& r : rows) {
    CHECK(r.difference.ci_low <= r.difference.value);
    CHECK(r.difference.value <= r.difference.ci_high);
    p.push_back(r.p_value);
  }
  const std::vector<double> q = BenjaminiHochberg(p);
  for (size_t i = 0; i < rows.size(); ++i) CHECK(rows[i].q_value == q[i]);
  set.delta_nll.pop_back();
  CHECK_THROWS_WITH(ComparePruneToRandom({set, c1}, t, 10, 7, 0.95),
                    Catch::Contains("has no per-token"));
}
