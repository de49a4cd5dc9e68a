// Tracing the tiny multi-domain corpus with the default model: what the trace holds equals what
// a direct forward pass of each window shows through a hook, padding never appears, statistics
// add up, and the routing policy is recorded and applied.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "analysis/common/float16.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/trace_load.h"
#include "analysis/trace/trace_reader.h"
#include "core/heads.h"
#include "core/vocab_math.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::TinyOptions;

namespace {

// Routing of one plain forward pass, per layer, as the hooks show it.
struct DirectRouting : RoutingObserver {
  int layers;
  std::vector<std::vector<int32_t>> ids;    // [L][T * k]
  std::vector<std::vector<float>> weights;  // [L][T * k]
  std::vector<std::vector<float>> logits;   // [L][T * E]
  std::vector<int> k;
  explicit DirectRouting(int l) : layers(l), ids(l), weights(l), logits(l), k(l) {}
  std::vector<HookRequest> Requests() const override {
    return {{HookSite::kTopkIds, -1}, {HookSite::kTopkWeights, -1}, {HookSite::kRouterLogits, -1}};
  }
  void OnEvent(const HookEvent& e) override {
    const size_t n = static_cast<size_t>(e.rows * e.cols);
    if (e.site == HookSite::kTopkIds) {
      ids[e.layer].assign(e.ids, e.ids + n);
      k[e.layer] = static_cast<int>(e.cols);
    } else if (e.site == HookSite::kTopkWeights) {
      weights[e.layer].assign(e.values, e.values + n);
    } else {
      logits[e.layer].assign(e.values, e.values + n);
    }
  }
};

const LoadedModel& Model() {
  static const LoadedModel m = LoadModel(trace_test::TinyModel());
  return m;
}

const Corpus& TinyCorpus() {
  static const Corpus c = ReadCorpus({trace_test::TinyCorpus()}, Model().tokenizer.get(), 512, {});
  return c;
}

// Checks every recorded token of document `d` against a direct forward of each of its windows.
void CheckAgainstDirectForward(const TraceReader& r, int64_t d, const WindowRule& rule,
                               const RoutingPolicy* policy) {
  const MoeModel& model = *Model().model;
  const int L = r.info().num_layers, K = r.info().top_k, E = r.info().num_experts;
  const std::vector<int32_t>& ids = TinyCorpus().documents[static_cast<size_t>(d)].ids;
  const TraceDocument doc = r.Document(d);
  REQUIRE(doc.tokens() == static_cast<int64_t>(ids.size()));
  const TokenRows tokens = r.ReadTokens(doc.token_begin, doc.tokens());
  const RoutingRows routing = r.ReadRouting(doc.token_begin, doc.tokens());
  CHECK(tokens.id == ids);  // every token once, in order, no padding
  for (const TraceWindow& w : SplitDocument(d, static_cast<int64_t>(ids.size()), rule)) {
    DirectRouting direct(L);
    const HookGuard guard = model.hooks().Add(&direct);
    const Batch batch =
        Batch::Single(std::vector<int32_t>(ids.begin() + w.begin, ids.begin() + w.end));
    const std::vector<float> hidden = model.Forward(batch, nullptr, policy);
    const std::vector<float> lm = LmLogits(model, hidden.data(), batch.tokens());
    for (int64_t i = w.record_begin; i < w.end; ++i) {
      const int64_t s = i - w.begin;
      INFO("document " << d << " token " << i << " (window " << w.begin << ".." << w.end << ")");
      CHECK(tokens.position[i] == s);
      CHECK(tokens.doc[i] == d);
      for (int l = 0; l < L; ++l) {
        const int k = direct.k[l];
        for (int j = 0; j < K; ++j) {
          const int32_t want_id = j < k ? direct.ids[l][s * k + j] : -1;
          const float want_w = j < k ? direct.weights[l][s * k + j] : 0.0f;
          CHECK(routing.Ids(i, l)[j] == want_id);
          CHECK(routing.Weights(i, l)[j] == Approx(want_w).margin(1e-5));
        }
      }
      REQUIRE(r.has_predictions());
      if (i + 1 < static_cast<int64_t>(ids.size())) {
        const float* z = lm.data() + s * 512;
        const double want = -LogProbability(z, 512, ids[i + 1]);
        CHECK(tokens.nll[i] == Approx(want).epsilon(1e-4));
        // The top-1 prediction is the argmax of the same logits; the batched pass may order a
        // near tie (within float rounding) the other way.
        const int32_t argmax = static_cast<int32_t>(std::max_element(z, z + 512) - z);
        const int32_t got = tokens.predicted[i];
        REQUIRE(got >= 0);
        REQUIRE(got < 512);
        if (got != argmax) CHECK(z[argmax] - z[got] < 1e-4f);
      } else {
        CHECK(std::isnan(tokens.nll[i]));
        CHECK(tokens.predicted[i] == -1);
      }
    }
    if (!r.info().record_logits) continue;
    // Logits of sampled tokens: float16 of the direct pass's values.
    const LogitRows logit_rows = r.ReadRouterLogits(0, r.num_logit_rows());
    for (int64_t row = 0; row < logit_rows.count; ++row) {
      const int64_t i = logit_rows.token[row] - doc.token_begin;
      if (i < w.record_begin || i >= w.end) continue;
      for (int l = 0; l < L; ++l)
        for (int e = 0; e < E; ++e) {
          const float want = direct.logits[l][(i - w.begin) * E + e];
          CHECK(logit_rows.Logits(row, l)[e] ==
                Approx(want).margin(2e-3 * std::max(1.0f, std::fabs(want))));
        }
    }
  }
}

}  // namespace

TEST_CASE("a trace of the tiny corpus equals direct forward passes", "[trace][model]") {
  const auto out = TempDir("trace_run") / "tiny.h5";
  TraceOptions o = TinyOptions(out);
  o.run.record_logits = true;
  o.run.logit_sample_rate = 1.0;
  const TraceSummary s = RunTrace(Model(), RoutingPolicy{}, o);
  const Corpus& corpus = TinyCorpus();
  CHECK(s.documents == 10);
  CHECK(s.tokens == corpus.tokens());
  CHECK(s.logit_rows == corpus.tokens());

  const TraceReader r(out);
  CHECK(r.info().complete);
  CHECK(r.info().top_k == 2);
  CHECK(r.num_documents() == 10);
  CHECK(r.num_tokens() == corpus.tokens());  // padding never enters the trace
  CHECK(r.domains() == std::vector<std::string>{"legal", "code", "prose"});
  CHECK(r.SourceIds(0, 3) == std::vector<std::string>{"apache-def", "apache-grant", "mit-short"});
  CHECK(r.Document(3).domain == 1);
  CHECK(r.num_logit_rows() == corpus.tokens());
  CHECK(nlohmann::json::parse(r.info().windowing)["max_window"] == 256);
  for (int64_t d = 0; d < r.num_documents(); ++d)
    CheckAgainstDirectForward(r, d, {256, 256}, nullptr);
}

TEST_CASE("the recorded top-1 predictions are the PyTorch reference's argmax",
          "[trace][model][python]") {
  // The tiny corpus traced with the model as trained; the h5py checker recomputes every
  // document's LM logits with the independent PyTorch reference (tests/reference) and compares
  // their argmax with /tokens/predicted.
  const auto out = TempDir("trace_predicted") / "tiny.h5";
  RunTrace(Model(), RoutingPolicy{}, TinyOptions(out));
  {
    const TraceReader r(out);
    REQUIRE(r.has_predictions());
    const TokenRows tokens = r.ReadTokens(0, r.num_tokens());
    int64_t distinct = 0;
    std::vector<bool> seen(512, false);
    for (int32_t p : tokens.predicted)
      if (p >= 0 && !seen[static_cast<size_t>(p)]) seen[static_cast<size_t>(p)] = true, ++distinct;
    CHECK(distinct > 1);  // not a constant
  }
  std::string cmd = "/usr/bin/python3";
  for (const std::string& a :
       {trace_test::Checker().string(), out.string(), trace_test::FormatDoc().string()})
    cmd.append(" ").append(trace_test::Quote(a));
  cmd += " --reference";
  const trace_test::CommandResult py = trace_test::RunCommand(cmd);
  INFO("check_trace.py --reference said:\n" << py.output);
  CHECK(py.status == 0);
  CHECK_THAT(py.output, Catch::Contains("predictions equal the reference's argmax"));
}

TEST_CASE("per-domain load sums to K x tokens and matches the routing rows", "[trace][model]") {
  const auto out = TempDir("trace_stats") / "tiny.h5";
  RunTrace(Model(), RoutingPolicy{}, TinyOptions(out));
  const TraceReader r(out);
  const ExpertStats stored = r.ReadStats(), computed = ComputeDomainLoad(r);
  CHECK(stored.load() == computed.load());
  for (size_t i = 0; i < stored.importance().size(); ++i)
    CHECK(stored.importance()[i] == Approx(computed.importance()[i]).epsilon(1e-9));
  const int M = 3, L = 2, E = 8, K = 2;
  std::vector<int64_t> domain_tokens(M + 1, 0);
  for (int64_t d = 0; d < r.num_documents(); ++d) {
    domain_tokens[r.Document(d).domain] += r.Document(d).tokens();
    domain_tokens[M] += r.Document(d).tokens();
  }
  for (int m = 0; m <= M; ++m)
    for (int l = 0; l < L; ++l) {
      int64_t load = 0;
      double importance = 0;
      for (int e = 0; e < E; ++e) {
        load += stored.load()[(m * L + l) * E + e];
        importance += stored.importance()[(m * L + l) * E + e];
      }
      INFO("domain row " << m << " layer " << l);
      CHECK(load == K * domain_tokens[m]);
      CHECK(importance == Approx(static_cast<double>(domain_tokens[m])).epsilon(1e-5));
    }
}

TEST_CASE("the routing policy is applied, recorded and round-trips", "[trace][model]") {
  const ModelConfig& c = Model().config();
  const RoutingPolicy policy = PolicyFromFlags("0:1,1:3,1:5", "reroute", "1:1", "", c);
  const auto out = TempDir("trace_policy") / "tiny.h5";
  RunTrace(Model(), policy, TinyOptions(out));
  const TraceReader r(out);
  const nlohmann::json stored = nlohmann::json::parse(r.info().routing_policy);
  CHECK(stored == PolicyToJson(policy));
  CHECK(PolicyToJson(PolicyFromJson(stored, c, "trace")) == PolicyToJson(policy));
  CHECK(r.info().top_k == 2);
  const RoutingRows rows = r.ReadRouting(0, r.num_tokens());
  for (int64_t t = 0; t < rows.count; ++t) {
    CHECK(rows.Ids(t, 0)[0] != 1);
    CHECK(rows.Ids(t, 0)[1] != 1);
    CHECK(rows.Ids(t, 1)[0] != 3);
    CHECK(rows.Ids(t, 1)[0] != 5);
    CHECK(rows.Ids(t, 1)[1] == -1);  // k = 1 in layer 1: the second column is padding
    CHECK(rows.Weights(t, 1)[1] == 0.0f);
  }
  const ExpertStats stats = r.ReadStats();
  int64_t layer1 = 0;
  for (int e = 0; e < 8; ++e) layer1 += stats.load()[(3 * 2 + 1) * 8 + e];
  CHECK(layer1 == r.num_tokens());
  for (int64_t d : {0, 4}) CheckAgainstDirectForward(r, d, {256, 256}, &policy);
}

TEST_CASE("overlapping windows record every token once with context", "[trace][model]") {
  const auto out = TempDir("trace_windows") / "tiny.h5";
  TraceOptions o = TinyOptions(out);
  o.run.windows = {64, 40};
  o.batch_size = 3;
  RunTrace(Model(), RoutingPolicy{}, o);
  const TraceReader r(out);
  CHECK(r.num_tokens() == TinyCorpus().tokens());
  const nlohmann::json w = nlohmann::json::parse(r.info().windowing);
  CHECK((w["max_window"] == 64 && w["stride"] == 40 && w["context_length"] == 256));
  CheckAgainstDirectForward(r, 0, {64, 40}, nullptr);
  CheckAgainstDirectForward(r, 6, {64, 40}, nullptr);
}

TEST_CASE("the sampled router logits follow the sample rate deterministically", "[trace][model]") {
  const auto dir = TempDir("trace_logits");
  TraceOptions o = TinyOptions(dir / "a.h5");
  o.run.record_logits = true;
  o.run.logit_sample_rate = 0.25;
  RunTrace(Model(), RoutingPolicy{}, o);
  o.output = dir / "b.h5";
  o.batch_size = 1;
  RunTrace(Model(), RoutingPolicy{}, o);
  const TraceReader a(dir / "a.h5"), b(dir / "b.h5");
  const std::vector<int64_t> rows_a(a.logit_tokens().begin(), a.logit_tokens().end());
  const std::vector<int64_t> rows_b(b.logit_tokens().begin(), b.logit_tokens().end());
  CHECK(rows_a == rows_b);
  const double fraction = static_cast<double>(rows_a.size()) / static_cast<double>(a.num_tokens());
  CHECK(fraction == Approx(0.25).margin(0.05));
  CHECK(a.info().logit_sample_rate == 0.25);
  CheckAgainstDirectForward(a, 0, {256, 256}, nullptr);
  TraceOptions bad = TinyOptions(dir / "c.h5");
  bad.run.record_logits = true;
  bad.run.logit_sample_rate = 1.5;
  CHECK_THROWS_WITH(RunTrace(Model(), RoutingPolicy{}, bad),
                    Catch::Contains("--logit-sample-rate"));
  CHECK_FALSE(std::filesystem::exists(dir / "c.h5"));
}
