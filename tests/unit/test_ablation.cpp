// Ablations on the bundled model with facts that hold exactly: ablating nothing changes nothing,
// re-routing around an expert no token selects changes nothing, k = num_selects is the model,
// the residual-cache path equals a full re-run, and interrupted sweeps resume.
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>

#include "analysis/ablation/ablation.h"
#include "analysis/ablation/ablation_file.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/trace_load.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

// The tiny corpus without its one long document (so sweeps stay quick).
std::filesystem::path SmallCorpus(const std::filesystem::path& dir) {
  std::ifstream in(trace_test::TinyCorpus());
  const auto out = dir / "small.jsonl";
  std::ofstream o(out);
  std::string line;
  while (std::getline(in, line))
    if (line.find("\"apache-def\"") == std::string::npos) o << line << "\n";
  return out;
}

AblationOptions Options(const std::filesystem::path& corpus, const std::filesystem::path& out) {
  AblationOptions o;
  o.run.corpus_files = {corpus.string()};
  o.output = out;
  o.pass.batch_size = 4;
  o.pass.bootstrap = 30;
  return o;
}

const AblationResult& Find(const AblationSummary& s, const std::string& name) {
  for (const AblationResult& r : s.results)
    if (r.name == name) return r;
  FAIL("no result named " << name);
  return s.results.front();
}

void CheckNoChange(const AblationResult& r) {
  INFO(r.name);
  for (const AblationDomainResult& d : r.domains) {
    CHECK(d.delta_nll.value == 0.0);
    CHECK(d.kl.value == 0.0);
    CHECK(d.agreement.value == 1.0);
    CHECK(d.policy_nll == d.base_nll);
    CHECK(d.delta_nll.ci_low == 0.0);
    CHECK(d.delta_nll.ci_high == 0.0);
  }
  for (size_t t = 0; t < r.delta_nll.size(); ++t) {
    CHECK(r.delta_nll[t] == 0.0f);
    CHECK(r.agree[t] == 1);
  }
}

}  // namespace

TEST_CASE("ablating nothing, an unused expert or k = num_selects changes nothing", "[ablate]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-exact");
  const auto corpus = SmallCorpus(dir);
  std::vector<AblationPolicy> policies = {NoAblation(c)};
  for (AblationPolicy& p : KSweep(c, false, {c.num_selects})) policies.push_back(p);
  for (AblationPolicy& p : TopRSweep(c, 1)) policies.push_back(p);
  AblationOptions o = Options(corpus, dir / "ablate.h5");
  const AblationSummary s = RunAblation(m, policies, o);
  CHECK(s.run == static_cast<int>(policies.size()));
  REQUIRE(s.results.size() == policies.size());
  CHECK(Find(s, "none").first_layer == c.num_hidden_layers);
  CheckNoChange(Find(s, "none"));
  CheckNoChange(Find(s, "top-r0"));
  std::string k_name = "k";
  k_name += std::to_string(c.num_selects);
  CheckNoChange(Find(s, k_name));

  SECTION("re-routing around an expert no token selects") {
    // One short document: its few tokens leave experts of layer 1 unselected (trace says which).
    const auto one = dir / "one.jsonl";
    std::ofstream(one) << R"({"id": "one", "domain": "x", "text": "int main"})"
                       << "\n";
    TraceOptions t = trace_test::TinyOptions(dir / "one.h5");
    t.run.corpus_files = {one.string()};
    RunTrace(m, RoutingPolicy{}, t);
    const TraceReader reader(dir / "one.h5");
    const ExpertStats load = ComputeDomainLoad(reader);
    std::vector<AblationPolicy> unused;
    for (AblationPolicy& p : SingleExpertSweep(c, DisableMode::kReroute)) {
      const size_t all = static_cast<size_t>(reader.domains().size());
      if (load.load()[(all * c.num_hidden_layers + p.layer) * c.num_experts + p.expert] == 0)
        unused.push_back(p);
    }
    REQUIRE(!unused.empty());
    const AblationSummary u = RunAblation(m, unused, Options(one, dir / "unused.h5"));
    REQUIRE(u.results.size() == unused.size());
    for (const AblationResult& r : u.results) CheckNoChange(r);
  }

  // A real ablation changes something; its numbers hang together.
  const AblationResult& top1 = Find(s, "top-r1");
  const AblationDomainResult& all = top1.domains.back();
  CHECK(all.delta_nll.value != 0);  // (the toy model may even gain: its sign is not fixed)
  CHECK(all.kl.value > 0);
  CHECK(all.agreement.value < 1);
  CHECK(all.delta_nll.ci_low <= all.delta_nll.value);
  CHECK(all.delta_nll.ci_high >= all.delta_nll.value);
  CHECK(all.policy_nll - all.base_nll == Approx(all.delta_nll.value).margin(1e-9));
  // Overall = token-weighted mean of the domains; per-token values average to the summary.
  double weighted = 0;
  int64_t tokens = 0;
  for (size_t d = 0; d + 1 < top1.domains.size(); ++d) {
    weighted += top1.domains[d].delta_nll.value * top1.domains[d].tokens;
    tokens += top1.domains[d].tokens;
  }
  CHECK(tokens == all.tokens);
  CHECK(tokens == s.tokens);
  CHECK(weighted / tokens == Approx(all.delta_nll.value).epsilon(1e-9));
  double mean = 0;
  for (float v : top1.delta_nll) mean += v;
  CHECK(mean / top1.delta_nll.size() == Approx(all.delta_nll.value).epsilon(1e-5));
  for (float kl : top1.kl) CHECK(kl >= 0);
  // The CSV beside the file has 5 metrics per policy and domain, and each policy's mean experts.
  std::ifstream csv(s.csv);
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  const int M = static_cast<int>(s.domains.size());
  CHECK(lines == 1 + static_cast<int>(policies.size()) * ((M + 1) * 5 + 1));
}

TEST_CASE("the residual cache gives the per-token NLL of a full re-run", "[ablate]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-cache");
  const auto corpus = SmallCorpus(dir);
  std::vector<AblationPolicy> policies = SingleExpertSweep(c, DisableMode::kDrop, {1});
  policies.resize(3);
  for (AblationPolicy& p : SingleExpertSweep(c, DisableMode::kReroute, {0})) {
    policies.push_back(p);
    break;
  }
  AblationOptions cached = Options(corpus, dir / "cached.h5");
  cached.pass.bootstrap = 0;
  AblationOptions full = cached;
  full.output = dir / "full.h5";
  full.pass.reuse_residual = false;
  const AblationSummary a = RunAblation(m, policies, cached), b = RunAblation(m, policies, full);
  REQUIRE(a.results.size() == b.results.size());
  for (size_t i = 0; i < a.results.size(); ++i) {
    INFO(a.results[i].name << " from layer " << a.results[i].first_layer);
    CHECK(a.results[i].first_layer == (i < 3 ? 1 : 0));
    REQUIRE(a.results[i].delta_nll.size() == b.results[i].delta_nll.size());
    for (size_t t = 0; t < a.results[i].delta_nll.size(); ++t)
      CHECK(a.results[i].delta_nll[t] == Approx(b.results[i].delta_nll[t]).margin(1e-6));
    CHECK(std::isnan(a.results[i].domains.back().delta_nll.ci_low));  // no bootstrap
  }
}

TEST_CASE("an interrupted sweep resumes where it stopped", "[ablate]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-resume");
  const auto corpus = SmallCorpus(dir);
  std::vector<AblationPolicy> policies = {NoAblation(c)};
  const AblationPolicy set = ExpertSet(c, "pair", {{1, 2}, {1, 5}}, DisableMode::kReroute);
  policies.push_back(set);
  for (AblationPolicy& p : RandomControls(c, set, 2, 7)) {
    CHECK(p.policy.layers[1].disabled.size() == 2);
    CHECK(p.policy.layers[0].disabled.empty());
    CHECK(p.policy.layers[1].disabled != std::vector<int32_t>{2, 5});
    CHECK(p.control_of == "pair");
    policies.push_back(p);
  }
  AblationOptions o = Options(corpus, dir / "resume.h5");
  o.pass.group_size = 1;
  const AblationSummary whole = RunAblation(m, policies, Options(corpus, dir / "whole.h5"));

  std::atomic<bool> stop{true};  // stop before anything runs
  o.pass.stop = &stop;
  const AblationSummary none = RunAblation(m, policies, o);
  CHECK(none.interrupted);
  CHECK(none.run == 0);
  // The first two policies only, then everything with --resume.
  o.pass.stop = nullptr;
  RunAblation(m, {policies[0], policies[1]}, o);
  CHECK(AblationFile::CompletedPolicies(o.output).size() == 2);
  o.resume = true;
  const AblationSummary rest = RunAblation(m, policies, o);
  CHECK(rest.skipped == 2);
  CHECK(rest.run == 2);
  REQUIRE(rest.results.size() == whole.results.size());
  for (size_t i = 0; i < whole.results.size(); ++i) {
    CHECK(rest.results[i].name == whole.results[i].name);
    CHECK(rest.results[i].domains.back().delta_nll.value ==
          whole.results[i].domains.back().delta_nll.value);
    CHECK(rest.results[i].domains.back().delta_nll.ci_high ==
          whole.results[i].domains.back().delta_nll.ci_high);
  }
  // Resuming with other settings is refused, naming the attribute.
  o.pass.seed = 99;
  CHECK_THROWS_WITH(RunAblation(m, policies, o),
                    Catch::Contains("resume.h5") && Catch::Contains("seed"));
}

TEST_CASE("moescope ablate runs a single-expert sweep from the command line", "[ablate][cli]") {
  const auto dir = TempDir("ablate-cli");
  const auto corpus = SmallCorpus(dir);
  const auto out = dir / "sweep.h5";
  const auto r = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) + " ablate --corpus " +
                                        trace_test::Quote(corpus.string()) +
                                        " --single-experts --layers 1 --mode drop -o " +
                                        trace_test::Quote(out.string()) + " --bootstrap 20");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("none") && Catch::Contains("L1E7-drop") &&
                           Catch::Contains("ran 9 of 9 policies"));
  CHECK(std::filesystem::exists(dir / "sweep.csv"));
  const auto results = AblationFile::Read(out);
  CHECK(results.size() == 9);
  const auto bad = trace_test::RunCommand(trace_test::Quote(trace_test::Cli()) +
                                          " ablate --corpus " + trace_test::Quote(corpus.string()) +
                                          " -o " + trace_test::Quote(out.string()));
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Catch::Contains("choose a sweep"));
}

TEST_CASE("an ablation over a trace's documents equals one over the traced corpus", "[ablate]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-trace");
  const auto corpus = SmallCorpus(dir);
  TraceOptions t = trace_test::TinyOptions(dir / "corpus.h5");
  t.run.corpus_files = {corpus.string()};
  RunTrace(m, RoutingPolicy{}, t);
  const std::vector<AblationPolicy> policies = {NoAblation(c),
                                                ExpertSet(c, "s", {{1, 3}}, DisableMode::kReroute)};
  const AblationSummary from_files = RunAblation(m, policies, Options(corpus, dir / "files.h5"));
  AblationOptions o = Options(corpus, dir / "trace.h5");
  o.run.corpus_files.clear();
  o.trace = dir / "corpus.h5";
  const AblationSummary from_trace = RunAblation(m, policies, o);
  CHECK(from_trace.documents == from_files.documents);
  CHECK(from_trace.tokens == from_files.tokens);
  CHECK(from_trace.domains == from_files.domains);
  const AblationResult &a = Find(from_files, "s"), &b = Find(from_trace, "s");
  CHECK(b.delta_nll == a.delta_nll);
  CHECK(b.agree == a.agree);
  // Both at once is an error, and so is neither.
  o.run.corpus_files = {corpus.string()};
  CHECK_THROWS_WITH(RunAblation(m, policies, o), Catch::Contains("not both"));
}

TEST_CASE("routing moves pair the experts left with the experts taken, in rank order",
          "[ablate][diff]") {
  RoutingDiff diff(2, 4);
  // Layer 0: {1, 2} -> {1, 3}: 2 moved to 3. Layer 1: {0, 2} -> {3} (one fewer): 0 -> 3 and
  // 2 -> none.
  const int16_t base[] = {1, 2, 0, 2};
  const int16_t policy[] = {1, 3, -1, 3, -1, -1};  // 3 columns, -1 pads
  diff.AddToken(base, 2, policy, 3);
  CHECK(diff.tokens() == 1);
  CHECK(diff.Moved(0, 2, 3) == 1);
  CHECK(diff.Moved(1, 0, 3) == 1);
  CHECK(diff.Moved(1, 2, 4) == 1);  // to "none"
  int64_t total = 0;
  for (int64_t v : diff.moved()) total += v;
  CHECK(total == 3);
  CHECK(diff.changed() == std::vector<int64_t>{1, 1});
  CHECK(diff.first_changed() == std::vector<int64_t>{0, 1});
  // The same selection in another order is no move; a top-1 swap is counted as such.
  const int16_t swapped[] = {2, 1, 2, 0};
  diff.AddToken(base, 2, swapped, 2);
  CHECK(diff.changed() == std::vector<int64_t>{1, 1});
  CHECK(diff.first_changed() == std::vector<int64_t>{1, 2});

  std::vector<PredictionChange> changes(5);
  for (int i = 0; i < 5; ++i) {
    changes[i].token = 10 - i;
    changes[i].policy_nll = i == 2 ? -3.0 : i;  // |ΔNLL| 0, 1, 3, 3, 4
  }
  changes[3].policy_nll = 3.0;
  KeepLargestChanges(changes, 3);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].token == 6);  // |4|
  CHECK(changes[1].token == 7);  // |3|, lower token index first
  CHECK(changes[2].token == 8);
}

TEST_CASE("an ablation's diff lists the changed predictions and the routing moves",
          "[ablate][diff]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-diff");
  const auto corpus = SmallCorpus(dir);
  const std::vector<AblationPolicy> policies = {
      NoAblation(c), ExpertSet(c, "L1E0+2", {{1, 0}, {1, 2}}, DisableMode::kReroute),
      ExpertSet(c, "L0E3-drop", {{0, 3}}, DisableMode::kDrop)};
  AblationOptions o = Options(corpus, dir / "diff.h5");
  o.pass.diff = true;
  o.pass.max_changes = 5;
  const AblationSummary s = RunAblation(m, policies, o);
  REQUIRE(s.diffs.size() == policies.size());
  const int L = c.num_hidden_layers, E = c.num_experts;
  for (size_t i = 0; i < policies.size(); ++i) {
    const AblationDiff& d = s.diffs[i];
    const AblationResult& r = Find(s, d.policy);
    INFO(d.policy);
    CHECK(d.predictions == s.tokens);
    CHECK(d.routing.tokens() == s.tokens);
    // Changed predictions are the tokens whose top-1 disagrees.
    int64_t disagree = 0;
    for (int8_t a : r.agree) disagree += a == 0;
    CHECK(d.changed_predictions == disagree);
    CHECK(d.changes.size() == static_cast<size_t>(std::min<int64_t>(disagree, 5)));
    for (const PredictionChange& ch : d.changes) {
      CHECK(ch.base_top1 != ch.policy_top1);
      CHECK(ch.delta_nll() == Approx(r.delta_nll[static_cast<size_t>(ch.token)]).margin(1e-4));
      CHECK(!ch.source_id.empty());
    }
    for (size_t k = 1; k < d.changes.size(); ++k)
      CHECK(std::abs(d.changes[k - 1].delta_nll()) >= std::abs(d.changes[k].delta_nll()));
  }
  // No policy: no change at all.
  CHECK(s.diffs[0].changed_predictions == 0);
  for (int64_t v : s.diffs[0].routing.moved()) CHECK(v == 0);
  // Re-routing experts 0 and 2 of layer 1: layer 0 is untouched; at layer 1 every move leaves 0
  // or 2 for another expert, never for "none".
  const RoutingDiff& reroute = s.diffs[1].routing;
  CHECK(reroute.changed()[0] == 0);
  CHECK(reroute.changed()[1] > 0);
  int64_t moves = 0;
  for (int from = 0; from <= E; ++from)
    for (int to = 0; to <= E; ++to) {
      const int64_t n = reroute.Moved(1, from, to);
      if (n == 0) continue;
      moves += n;
      CHECK((from == 0 || from == 2));
      CHECK((to != 0 && to != 2 && to != E));
    }
  CHECK(moves >= reroute.changed()[1]);
  // Dropping expert 3 of layer 0: its tokens lose it for nothing there.
  const RoutingDiff& drop = s.diffs[2].routing;
  CHECK(drop.changed()[0] > 0);
  CHECK(drop.Moved(0, 3, E) == drop.changed()[0]);
  (void)L;
}

TEST_CASE("the top-r sweep brings a random-r control for every r", "[ablate][random-r]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  SweepRequest request;
  request.top_r_max = 2;
  request.seed = 5;
  std::vector<AblationPolicy> sweep = BuildSweep(request, c);
  std::vector<std::string> names;
  for (const AblationPolicy& p : sweep) names.push_back(p.name);
  CHECK(names ==
        std::vector<std::string>{"none", "top-r0", "top-r1", "random-r1", "top-r2", "random-r2"});
  const AblationPolicy& control = sweep[5];
  CHECK(control.kind == "random_r");
  CHECK(control.control_of == "top-r2");
  CHECK(control.r == 2);
  CHECK(control.first_layer == 0);
  for (const LayerPolicy& lp : control.policy.layers) {
    CHECK(lp.random_r_disable == 2);
    CHECK(lp.random_r_seed == 5);
    CHECK(lp.top_r_disable == 0);
  }
  CHECK_NOTHROW(control.policy.Validate(c));

  request.top_r_controls = 2;
  request.layers = {1};
  sweep = BuildSweep(request, c);
  names.clear();
  for (const AblationPolicy& p : sweep) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"none", "top-r0", "top-r1", "random-r1", "random-r1/1",
                                          "top-r2", "random-r2", "random-r2/1"});
  CHECK(sweep[4].policy.layers[1].random_r_seed == 6);
  CHECK(sweep[4].policy.layers[0].random_r_disable == 0);
  CHECK(sweep[4].first_layer == 1);
  CheckUniqueNames(sweep);
  request.top_r_controls = 0;
  CHECK(BuildSweep(request, c).size() == 4);
  CHECK_THROWS_WITH(RandomRSweep(c, 1, -1, 0), Catch::Contains("--top-r-controls"));
  CHECK_THROWS_WITH(RandomRSweep(c, c.num_experts, 1, 0), Catch::Contains("--top-r-max"));

  // Run: the control changes the predictions, differs from top-r, and its per-token values do
  // not depend on the batch size or the residual cache.
  const auto dir = TempDir("ablate-random-r");
  const auto corpus = SmallCorpus(dir);
  const std::vector<AblationPolicy> policies = {NoAblation(c), TopRSweep(c, 1)[1],
                                                RandomRSweep(c, 1, 1, 3)[0]};
  AblationOptions o = Options(corpus, dir / "random_r.h5");
  const AblationSummary s = RunAblation(m, policies, o);
  const AblationResult &top = Find(s, "top-r1"), &random = Find(s, "random-r1");
  CHECK(random.kind == "random_r");
  CHECK(random.control_of == "top-r1");
  CHECK(random.r == 1);
  const AblationDomainResult& all = random.domains.back();
  CHECK(all.kl.value > 0);
  CHECK(all.agreement.value < 1);
  CHECK(all.delta_nll.ci_low <= all.delta_nll.value);
  CHECK(all.delta_nll.ci_high >= all.delta_nll.value);
  CHECK(random.delta_nll != top.delta_nll);
  AblationOptions other = Options(corpus, dir / "random_r_b1.h5");
  other.pass.batch_size = 1;
  other.pass.reuse_residual = false;
  const AblationSummary b1 = RunAblation(m, policies, other);
  const AblationResult& random_b1 = Find(b1, "random-r1");
  REQUIRE(random_b1.delta_nll.size() == random.delta_nll.size());
  for (size_t t = 0; t < random.delta_nll.size(); ++t)
    CHECK(random_b1.delta_nll[t] == Approx(random.delta_nll[t]).margin(1e-5));
  // The file, the CSV and the printed table carry the control next to its top-r.
  const auto read = AblationFile::Read(o.output);
  REQUIRE(read.size() == 3);
  CHECK(read[2].kind == "random_r");
  CHECK(read[2].control_of == "top-r1");
  std::ifstream csv(s.csv);
  int rows = 0;
  for (std::string line; std::getline(csv, line);)
    if (line.rfind("random-r1,random_r,", 0) == 0) {
      ++rows;
      CHECK(line.find(",top-r1,") != std::string::npos);
    }
  CHECK(rows == (static_cast<int>(s.domains.size()) + 1) * 5 + 1);  // + mean_experts
  const std::string table = FormatAblationTable(s);
  CHECK_THAT(table, Catch::Contains("top-r and its random-r control: ΔNLL per domain"));
  const size_t at = table.find("top-r and its random-r control");
  CHECK(table.find("top-r1", at) < table.find("random-r1", at));
}

TEST_CASE("moescope ablate --top-r-max runs the random-r controls", "[ablate][cli][random-r]") {
  const auto dir = TempDir("ablate-cli-random-r");
  const auto corpus = SmallCorpus(dir);
  const auto out = dir / "top_r.h5";
  const std::string base = trace_test::Quote(trace_test::Cli()) + " ablate --corpus " +
                           trace_test::Quote(corpus.string()) + " -o " +
                           trace_test::Quote(out.string()) + " --bootstrap 10 --top-r-max 1";
  const auto r = trace_test::RunCommand(base);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("random-r1") && Catch::Contains("ran 4 of 4 policies") &&
                           Catch::Contains("top-r and its random-r control"));
  const auto more = trace_test::RunCommand(base + " --top-r-controls 2 --resume");
  INFO(more.output);
  REQUIRE(more.status == 0);
  CHECK_THAT(more.output, Catch::Contains("ran 1 of 5 policies (4 already done)"));
  CHECK(AblationFile::Read(out).back().name == "random-r1/1");
}
