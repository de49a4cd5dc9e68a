// The live prompt view and its job (analysis Probe on the tiny test model), drawn headless; and
// the bundled sample trace the app makes when started without one (EnsureSampleTrace over the
// tiny test corpus): made, reused, remade for another checkpoint, cancelled and resumed.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "analysis/trace/trace_reader.h"
#include "core/model_loader.h"
#include "core/sentencepiece_tokenizer.h"
#include "gui/model/prompt_job.h"
#include "gui/model/sample_trace.h"
#include "gui/model/studio_loader.h"
#include "gui/views/colors.h"
#include "gui/views/prompt_view.h"
#include "gui_test_util.h"

using namespace moe::studio;

namespace {

constexpr const char* kPrompt = "The quick brown fox jumps over the lazy dog.";

// Draws frames until the job has answered what the view sent.
void Settle(gui_test::Headless& ui, PromptView& view, PromptJob& job, const StudioData& d,
            Selection& sel) {
  ui.Frame(view, d, sel);  // sends (no debounce: set_text/set_disabled send at once)
  job.Wait();
  ui.Frame(view, d, sel);
  ui.Frame(view, d, sel);
}

// The view connected to its job on the tiny test model, with the test prompt and layer 1
// selected, and a headless ImGui to draw it.
struct PromptBench {
  PromptJob job;
  PromptView view;
  std::string model = gui_test::TinyModel().string();
  StudioData d;  // no trace: the view needs only a model
  Selection sel;
  gui_test::Headless ui;

  explicit PromptBench(ImVec2 size = ImVec2(1280, 800)) : ui(size) {
    view.set_job({[this](const PromptRequest& r) { job.Start(r); }, [this] { return job.Status(); },
                  [this] { return model; }});
    view.set_text(kPrompt);
    sel.layer = 1;
  }
  void Settle() { ::Settle(ui, view, job, d, sel); }
};

}  // namespace

TEST_CASE("live prompt: a prompt yields one box per token and 5 predictions", "[gui][prompt]") {
  PromptBench b;
  auto& [job, view, model, d, sel, ui] = b;
  b.Settle();
  const PromptStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.error.empty());
  REQUIRE(status.outcome != nullptr);
  CHECK(status.outcome->ablated == nullptr);
  const moe::SentencePieceTokenizer tok(gui_test::TinyModel() / "tokenizer.model");
  const int T = static_cast<int>(tok.Encode(kPrompt).size());
  CHECK(status.outcome->base.size() == T);
  CHECK(view.drawn_tokens() == T);
  CHECK(view.drawn_predictions() == 5);
  // Every box has its first expert's colour at the selected layer.
  const PromptRun& run = status.outcome->base;
  const auto quads = gui_test::SolidQuads();
  for (int t = 0; t < T; ++t) {
    const ImU32 c = ExpertColor(run.Top1(t, 1), run.experts);
    CHECK(std::any_of(quads.begin(), quads.end(),
                      [&](const gui_test::Quad& q) { return q.col == c; }));
    CHECK(view.drawn_top1()[static_cast<size_t>(t)] == run.Top1(t, 1));
  }
  std::ostringstream csv;
  view.WriteCsv(d, sel, csv);
  const std::string text = csv.str();
  // Header, T * L * K token rows, 5 predictions.
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + T * run.layers * run.kmax + 5);
}

TEST_CASE("live prompt: a disabled expert never appears, and predictions are compared",
          "[gui][prompt]") {
  PromptBench b;
  auto& [job, view, model, d, sel, ui] = b;
  b.Settle();
  REQUIRE(job.Status().outcome != nullptr);
  const int expert = job.Status().outcome->base.Top1(1, 1);  // in use at layer 1

  // The shared selection's "disable selected", as the button does it.
  view.set_disabled({{1, expert}});
  b.Settle();
  const PromptStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.outcome != nullptr);
  REQUIRE(status.outcome->ablated != nullptr);
  const PromptRun& ablated = *status.outcome->ablated;
  for (int64_t t = 0; t < ablated.size(); ++t)
    for (int k = 0; k < ablated.kmax; ++k) CHECK(ablated.ids[ablated.Row(t, 1) + k] != expert);
  CHECK(view.drawn_tokens() == ablated.size());
  CHECK(std::find(view.drawn_top1().begin(), view.drawn_top1().end(), expert) ==
        view.drawn_top1().end());
  CHECK(view.drawn_predictions() == 5);
  std::ostringstream csv;
  view.WriteCsv(d, sel, csv);
  CHECK(csv.str().find("disabled,prediction,4,") != std::string::npos);

  // Typing is debounced: an edit is sent only after the pause.
  view.set_disabled({});
  b.Settle();
  CHECK(job.Status().outcome->ablated == nullptr);
  CHECK(!view.WantsFrames());
}

TEST_CASE("live prompt: drop and drop-renorm semantics, and forced routes", "[gui][prompt]") {
  PromptBench b(ImVec2(1280, 900));
  auto& [job, view, model, d, sel, ui] = b;
  b.Settle();
  REQUIRE(job.Status().outcome != nullptr);
  const PromptRun base = job.Status().outcome->base;
  const int expert = base.Top1(1, 1);
  auto has = [](const PromptRun& r, int64_t t, int layer, int e) {
    for (int k = 0; k < r.kmax; ++k)
      if (r.ids[r.Row(t, layer) + k] == e) return true;
    return false;
  };
  auto count = [](const PromptRun& r, int64_t t, int layer) {
    int n = 0;
    for (int k = 0; k < r.kmax; ++k) n += r.ids[r.Row(t, layer) + k] >= 0;
    return n;
  };
  auto weight = [](const PromptRun& r, int64_t t, int layer) {
    double w = 0;
    for (int k = 0; k < r.kmax; ++k) w += r.weights[r.Row(t, layer) + k];
    return w;
  };

  // Drop: the expert's tokens keep their other experts only (one fewer), with their weights.
  view.set_disabled({{1, expert}});
  view.set_mode("drop");
  CHECK(view.mode() == "drop");
  b.Settle();
  PromptStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.outcome != nullptr);
  CHECK(status.outcome->request.mode == moe::DisableMode::kDrop);
  REQUIRE(status.outcome->ablated != nullptr);
  const PromptRun drop = *status.outcome->ablated;
  int dropped = 0;
  for (int64_t t = 0; t < base.size(); ++t) {
    CHECK(!has(drop, t, 1, expert));
    if (!has(base, t, 1, expert)) continue;
    ++dropped;
    CHECK(count(drop, t, 1) == count(base, t, 1) - 1);
    CHECK(weight(drop, t, 1) < weight(base, t, 1));
  }
  CHECK(dropped > 0);

  // Drop and renormalize: the remaining weights sum to what all of them did.
  view.set_mode("drop-renorm");
  b.Settle();
  status = job.Status();
  REQUIRE(status.outcome != nullptr);
  REQUIRE(status.outcome->ablated != nullptr);
  CHECK(status.outcome->request.mode == moe::DisableMode::kDropRenormalize);
  const PromptRun& renorm = *status.outcome->ablated;
  for (int64_t t = 0; t < base.size(); ++t)
    if (has(base, t, 1, expert) && count(base, t, 1) > 1) {
      CHECK(count(renorm, t, 1) == count(base, t, 1) - 1);
      CHECK(weight(renorm, t, 1) == Approx(weight(base, t, 1)).epsilon(1e-4));
    }
  CHECK(view.drawn_tokens() == base.size());

  // A forced route: token 2 takes two experts it did not choose at layer 1; tokens before it
  // are untouched (the model is causal); no expert is disabled.
  view.set_disabled({});
  view.set_mode("reroute");
  std::vector<int> forced;
  for (int e = 0; e < base.experts && forced.size() < 2; ++e)
    if (!has(base, 2, 1, e)) forced.push_back(e);
  REQUIRE(forced.size() == 2);
  view.set_forced({{1, 2, forced}, {0, 3, {0}}, {0, 3, {1}}});  // the last route of a token wins
  REQUIRE(view.forced().size() == 2);
  CHECK(view.forced()[1].experts == std::vector<int>{1});
  b.Settle();
  status = job.Status();
  INFO(status.error);
  REQUIRE(status.outcome != nullptr);
  REQUIRE(status.outcome->ablated != nullptr);
  CHECK(status.outcome->request.forced.size() == 2);
  const PromptRun& routed = *status.outcome->ablated;
  CHECK(count(routed, 2, 1) == 2);
  for (int e : forced) CHECK(has(routed, 2, 1, e));
  CHECK(count(routed, 3, 0) == 1);
  CHECK(routed.Top1(3, 0) == 1);
  for (int64_t t = 0; t < 2; ++t)
    for (int l = 0; l < base.layers; ++l)
      for (int k = 0; k < base.kmax; ++k)
        CHECK(routed.ids[routed.Row(t, l) + k] == base.ids[base.Row(t, l) + k]);
  CHECK(view.drawn_top1()[2] == routed.Top1(2, 1));

  // The semantics is typed (moe::DisableMode); a layer outside the model is an error of the
  // request.
  PromptRequest bad = status.outcome->request;
  bad.disabled = {{99, 0}};
  const moe::LoadedModel m = moe::LoadModel(gui_test::TinyModel());
  CHECK_THROWS_WITH(PromptPolicy(bad, m.config()), Catch::Contains("layer 99 is out of range"));
}

TEST_CASE("live prompt: errors are shown, not thrown", "[gui][prompt]") {
  PromptJob job;
  PromptView view;
  view.set_job({[&](const PromptRequest& r) { job.Start(r); }, [&] { return job.Status(); },
                [] { return std::string("/nonexistent/model"); }});
  StudioData d;
  Selection sel;
  gui_test::Headless ui;
  Settle(ui, view, job, d, sel);
  CHECK(!job.Status().error.empty());
  CHECK(view.drawn_tokens() == 0);
}

TEST_CASE("sample trace: made once, reused, remade for another checkpoint, resumed after cancel",
          "[gui][sample-trace]") {
  gui_test::TempDir dir("sample");
  SampleTraceRequest r;
  r.model_dir = gui_test::TinyModel();
  r.corpus_dir = gui_test::TinyCorpus().parent_path();
  r.output = dir.path() / "cache/moescope/sample_trace.h5";
  CHECK(!SampleTraceUpToDate(r));

  // Cancelled at the first forward pass: Cancelled, and an incomplete trace is left.
  std::atomic<bool> stop{true};
  CHECK_THROWS_AS(EnsureSampleTrace(r, &stop), Cancelled);
  CHECK(!SampleTraceUpToDate(r));

  double last = 0;
  CHECK(EnsureSampleTrace(r, nullptr, [&](double f) { last = f; }) == r.output);
  CHECK(last == 1.0);
  REQUIRE(SampleTraceUpToDate(r));
  const moe::TraceReader reader(r.output);
  CHECK(reader.info().complete);
  CHECK(reader.num_documents() > 0);
  const auto made = std::filesystem::last_write_time(r.output);
  EnsureSampleTrace(r);  // up to date: left alone
  CHECK(std::filesystem::last_write_time(r.output) == made);

  // Not a trace: made anew.
  std::filesystem::remove(r.output);
  { std::ofstream(r.output) << "not a trace"; }
  CHECK(!SampleTraceUpToDate(r));
  EnsureSampleTrace(r);
  CHECK(SampleTraceUpToDate(r));

  // A trace of another checkpoint (the tiny model's, for the bundled model): made anew.
  SampleTraceRequest other = r;
  other.model_dir = moe::DefaultModelDir();
  CHECK(!SampleTraceUpToDate(other));
  EnsureSampleTrace(other);
  CHECK(SampleTraceUpToDate(other));
  CHECK(!SampleTraceUpToDate(r));
}
