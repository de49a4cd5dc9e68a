// The views of prune-curve, cache-sim and replay exports over real files the CLI made on the tiny
// fixtures: loaded through gui/model/results_loader.h (values equal to the library readers'),
// drawn headless (markers and bars where their values put them, tooltips), found next to a trace,
// exported to non-blank PNGs, and malformed files refused naming the file and field (in the app:
// a dialog).
#include <QImage>
#include <fstream>
#include <set>
#include <sstream>

#include "analysis/cache/cache_sim_file.h"
#include "analysis/prune/prune_curve.h"
#include "analysis/replay/route_audit.h"
#include "core/error.h"
#include "gui/model/results_loader.h"
#include "gui/views/cache_curve_view.h"
#include "gui/views/prune_curve_view.h"
#include "gui/views/replay_view.h"
#include "gui_test_util.h"

namespace {

using gui_test::Quote;
using gui_test::Shell;
using moe::studio::ResultsData;
using moe::studio::ResultsKind;
using moe::studio::Selection;
using moe::studio::StudioData;

// The exports of `moescope prune-curve`, `cache-sim` and `replay` on the tiny model and corpus,
// made once per test run, in one folder with a copy of the small trace:
//   prune.h5 (+ .csv, .vs-random.csv), cache/cache.json, replay.csv (two audits).
const std::filesystem::path& ResultsFolder() {
  static gui_test::TempDir dir("results");
  static const std::filesystem::path path = [] {
    const std::filesystem::path d = dir.path();
    std::filesystem::copy_file(gui_test::SmallTrace(), d / "small.h5");
    const std::string cli = Quote(MOESCOPE_CLI);
    const std::string model = " --model " + Quote(gui_test::TinyModel().string());
    const std::string corpus = " --corpus " + Quote(gui_test::TinyCorpus().string());
    for (const std::string& command :
         {cli + " importance" + model + corpus + " -o " + Quote((d / "imp.json").string()),
          cli + " prune-curve" + model + corpus + " --importance " +
              Quote((d / "imp.json").string()) +
              " --scores frequency,reap --ratios 0.25,0.5 --random-controls 2 --bootstrap 50 -o " +
              Quote((d / "prune.h5").string()),
          // Three policies: the cache view's test adds a fourth the file did not have.
          cli + " cache-sim " + Quote((d / "small.h5").string()) +
              " --policies lru,lfu,belady -o " + Quote((d / "cache").string()),
          cli + " replay" + model + corpus + " --max-tokens-per-document 64 --export-routes " +
              Quote((d / "own.safetensors").string()),
          cli + " replay" + model + corpus + " --max-tokens-per-document 64 --precision --routes " +
              Quote((d / "own.safetensors").string()) + " --bootstrap 50 -o " +
              Quote((d / "replay.csv").string())}) {
      const gui_test::ShellRun r = Shell(command);
      INFO(command << "\n" << r.output);
      REQUIRE(r.status == 0);
    }
    return d;
  }();
  return path;
}

ResultsData LoadAll() {
  ResultsData r;
  const auto& d = ResultsFolder();
  CHECK(moe::studio::LoadResultsFile(d / "prune.h5", r) == ResultsKind::kPruneCurve);
  CHECK(moe::studio::LoadResultsFile(d / "cache" / "cache.json", r) == ResultsKind::kCacheSim);
  CHECK(moe::studio::LoadResultsFile(d / "replay.csv", r) == ResultsKind::kReplay);
  return r;
}

std::string ErrorOf(const std::filesystem::path& file) {
  ResultsData r;
  try {
    moe::studio::LoadResultsFile(file, r);
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

size_t Colours(const QImage& image) {
  std::set<QRgb> colours;
  for (int y = 0; y < image.height(); y += 3)
    for (int x = 0; x < image.width(); x += 3) colours.insert(image.pixel(x, y));
  return colours.size();
}

}  // namespace

TEST_CASE("results loader: the CLI's exports read into the views' data unchanged",
          "[gui][results]") {
  const ResultsData r = LoadAll();
  const auto& d = ResultsFolder();
  // Pruning curve: 2 scores x 2 ratios, each against its controls from the comparison CSV.
  const moe::PruneCurveFile file = moe::ReadPruneCurve(d / "prune.h5");
  REQUIRE(r.prune.sets.size() == 4);
  CHECK(r.prune.scores == std::vector<std::string>{"frequency", "reap"});
  CHECK(r.prune.ratios == std::vector<double>{0.25, 0.5});
  CHECK(r.prune.comparison_source == (d / "prune.h5.vs-random.csv").string());
  // Per-layer controls of every score at one ratio are the same draws: 2 per ratio.
  CHECK(r.prune.controls.size() == 4);
  const size_t M = r.prune.domains.size();
  for (const moe::PruneVsRandom& v : file.comparison) {
    const moe::studio::PruneSet* s = nullptr;
    for (const auto& x : r.prune.sets)
      if (x.name == v.set) s = &x;
    REQUIRE(s != nullptr);
    const size_t m = static_cast<size_t>(v.domain);
    CHECK(s->q_value[m] == v.q_value);
    CHECK(s->difference[m].value == v.difference.value);
    CHECK(s->random_delta_nll[m] == v.random_delta_nll);
    CHECK(s->controls == 2);
  }
  for (const moe::AblationResult& a : file.results)
    for (const auto& s : r.prune.sets)
      if (s.name == a.name) CHECK(s.delta_nll[M].value == a.domains[M].delta_nll.value);
  // Cache: every row, the three policies, the trace's shape.
  const moe::CacheSimTable t = moe::ReadCacheSimTable(d / "cache" / "cache.json");
  CHECK(r.cache.rows.size() == t.rows.size());
  CHECK(r.cache.policies == std::vector<std::string>{"lru", "lfu", "belady"});
  CHECK(r.cache.layers == t.layers);
  for (size_t i = 0; i < t.rows.size(); ++i)
    CHECK(r.cache.rows[i].hit_rate.value == t.rows[i].hit_rate);
  // Replay: two audits, one bar pair per MoE layer; replaying its own routes agrees fully.
  REQUIRE(r.replay.audits.size() == 2);
  for (const auto& a : r.replay.audits) {
    CHECK(!a.layers.empty());
    if (a.subject == "imported routes")
      for (const auto& l : a.layers) CHECK(l.set_agreement.value == 1.0);
  }
}

TEST_CASE("pruning-curve view: a line per score, the random control, tooltips, CSV",
          "[gui][results][views]") {
  StudioData data;
  data.results = LoadAll();
  gui_test::Headless ui(ImVec2(1200, 800));
  Selection sel;
  moe::studio::PruneCurveView view;
  ui.Frame(view, data, sel);
  ui.Frame(view, data, sel);
  CHECK(view.drawn_series() == 3);  // 2 scores and the control
  CHECK(view.drawn_markers() == 4 + 4);
  // Hovering where a set's ΔNLL puts it shows its tooltip; far from every point none.
  const moe::studio::PruneSet& s = data.results.prune.sets.back();
  const ImVec2 at = view.last_frame().At(s.ratio, s.delta_nll.back().value);
  ui.Frame(view, data, sel, at);
  ui.Frame(view, data, sel, at);
  CHECK(gui_test::TooltipShown());
  const ImVec2 empty(view.last_frame().min.x + 3, view.last_frame().min.y + 3);
  ui.Frame(view, data, sel, empty);
  ui.Frame(view, data, sel, empty);
  CHECK(!gui_test::TooltipShown());
  // A domain row draws too.
  view.set_domain_row(0);
  ui.Frame(view, data, sel);
  CHECK(view.drawn_markers() == 8);
  std::ostringstream csv;
  view.WriteCsv(data, sel, csv);
  int lines = 0;
  std::istringstream in(csv.str());
  for (std::string line; std::getline(in, line);) ++lines;
  const int rows = static_cast<int>(data.results.prune.domains.size() + 1);
  CHECK(lines == 1 + (4 + 4) * rows);
}

TEST_CASE("cache view: a line per policy of the file at the selected layer, tooltips, CSV",
          "[gui][results][views]") {
  StudioData data;
  data.results = LoadAll();
  const auto& c = data.results.cache;
  gui_test::Headless ui(ImVec2(1200, 800));
  Selection sel;
  sel.layer = c.layers - 1;
  moe::studio::CacheCurveView view;
  ui.Frame(view, data, sel);
  CHECK(view.shown_layer() == c.layers - 1);
  CHECK(view.drawn_series() == 3);
  CHECK(view.drawn_markers() == static_cast<int>(3 * c.capacities.size()));
  const auto* row = c.Find(c.layers - 1, static_cast<int>(c.domains.size()), 2, c.capacities[1]);
  REQUIRE(row != nullptr);
  const ImVec2 at = view.last_frame().At(row->capacity, row->hit_rate.value);
  ui.Frame(view, data, sel, at);
  ui.Frame(view, data, sel, at);
  CHECK(gui_test::TooltipShown());
  // A policy the file names that this build does not simulate gets its own line.
  data.results.cache.policies.push_back("prefetch-token");
  for (int cap : c.capacities) {
    moe::studio::CacheCurveRow x = *c.Find(0, static_cast<int>(c.domains.size()), 0, cap);
    x.policy = 3;
    data.results.cache.rows.push_back(x);
  }
  sel.layer = 0;
  ui.Frame(view, data, sel);
  CHECK(view.drawn_series() == 4);
  std::ostringstream csv;
  view.WriteCsv(data, sel, csv);
  CHECK(csv.str().find(",prefetch-token,") != std::string::npos);
}

TEST_CASE("replay view: two bars per MoE layer at their agreements, the delta-NLL header, CSV",
          "[gui][results][views]") {
  StudioData data;
  data.results = LoadAll();
  gui_test::Headless ui(ImVec2(1200, 800));
  Selection sel;
  moe::studio::ReplayView view;
  for (int audit = 0; audit < 2; ++audit) {
    view.set_audit(audit);
    ui.Frame(view, data, sel);
    const auto& a = data.results.replay.audits[static_cast<size_t>(audit)];
    CHECK(view.drawn_bars() == static_cast<int>(2 * a.layers.size()));
    // Each bar's top is at its value: a filled quad in the plot reaching that height.
    const auto quads =
        gui_test::QuadsIn(gui_test::SolidQuads(), view.last_frame().min, view.last_frame().max);
    for (const auto& l : a.layers)
      for (double v : {l.set_agreement.value, l.top1_agreement.value}) {
        const float top = view.last_frame().At(l.layer, v).y;
        bool found = false;
        for (const auto& q : quads) found = found || std::abs(q.min.y - top) < 1.0f;
        CHECK(found);
      }
  }
  std::ostringstream csv;
  view.WriteCsv(data, sel, csv);
  CHECK(csv.str().find("imported routes vs moescope's own routing") != std::string::npos);
  CHECK(csv.str().find("bf16 activations vs fp32 activations") != std::string::npos);
}

TEST_CASE("results next to a trace are found, and malformed ones are refused naming file and field",
          "[gui][results][bad-input]") {
  ResultsData r;
  std::vector<std::string> errors;
  const auto found = moe::studio::FindResults(ResultsFolder(), r, errors);
  CHECK(errors.empty());
  CHECK(found.size() == 3);
  CHECK(!r.prune.empty());
  CHECK(!r.cache.empty());
  CHECK(!r.replay.empty());

  gui_test::TempDir dir("results-bad");
  const auto bad_json = dir.path() / "cache.json";
  std::ofstream(bad_json) << R"({"format": "moescope-cache-sim", "format_version": 1,
    "num_layers": 2, "num_experts": 8, "top_k": 2, "expert_bytes": [1, 1],
    "rows": [{"layer": 0, "domain": "all", "policy": "lru", "capacity": "two"}]})";
  std::string e = ErrorOf(bad_json);
  CHECK(e.find(bad_json.string()) != std::string::npos);
  CHECK(e.find("rows[0].capacity") != std::string::npos);

  const auto bad_replay = dir.path() / "replay.csv";
  std::ofstream(bad_replay) << "audit,layer,domain,metric,value,ci_low,ci_high,n\n"
                               "\"b vs a\",0,all,set_agreement,high,,,10\n";
  e = ErrorOf(bad_replay);
  CHECK(e.find(bad_replay.string() + ": line 2, column 'value'") != std::string::npos);

  std::filesystem::copy_file(ResultsFolder() / "prune.h5", dir.path() / "prune.h5");
  const auto bad_cmp = dir.path() / "prune.h5.vs-random.csv";
  std::ofstream(bad_cmp) << "set,domain,controls\nreap-25%,all,2\n";
  e = ErrorOf(bad_cmp);
  CHECK(e.find(bad_cmp.string()) != std::string::npos);
  CHECK(e.find("no column 'set_delta_nll'") != std::string::npos);
  CHECK(ErrorOf(gui_test::SmallTrace()).find(gui_test::SmallTrace().string()) != std::string::npos);

  // FindResults reports the malformed ones and reads the rest.
  ResultsData partial;
  errors.clear();
  moe::studio::FindResults(dir.path(), partial, errors);
  CHECK(errors.size() == 3);
}

TEST_CASE("moescope-studio --export-views renders the result views found next to the trace",
          "[gui][results][export][xvfb]") {
  gui_test::TempDir dir("results-export");
  const auto out = dir.path() / "views";
  const gui_test::ShellRun r =
      Shell("QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
            Quote(gui_test::Studio()) + " --export-views " + Quote(out.string()) + " " +
            Quote((ResultsFolder() / "small.h5").string()) + " --size 1200x800");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* view : {"prune_curve", "cache_curves", "replay"}) {
    INFO(view);
    QImage image(QString::fromStdString((out / (std::string(view) + ".png")).string()));
    REQUIRE(!image.isNull());
    CHECK(image.width() == 1200);
    CHECK(Colours(image) > 20);
    CHECK(std::filesystem::file_size(out / (std::string(view) + ".csv")) > 100);
  }
  // Next to a trace without results they are left out.
  const auto plain = dir.path() / "plain";
  const gui_test::ShellRun p =
      Shell("QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
            Quote(gui_test::Studio()) + " --export-views " + Quote(plain.string()) + " " +
            Quote(gui_test::SmallTrace().string()) + " --size 400x300");
  INFO(p.output);
  REQUIRE(p.status == 0);
  CHECK(!std::filesystem::exists(plain / "prune_curve.png"));
  CHECK(std::filesystem::exists(plain / "overview.png"));
}

TEST_CASE("the app opens a malformed results file with a dialog naming the file and field",
          "[gui][results][app][xvfb][bad-input]") {
  gui_test::TempDir dir("results-app");
  const auto bad = dir.path() / "report.csv";
  std::ofstream(bad) << "audit,layer,domain,metric,value,ci_low,ci_high,n\n"
                        "\"b vs a\",zero,all,set_agreement,1,,,10\n";
  const auto config = dir.path() / "config";
  std::filesystem::create_directories(config);
  const gui_test::ShellRun r =
      Shell("XDG_CONFIG_HOME=" + Quote(config.string()) + " QT_QPA_PLATFORM=xcb DISPLAY=" +
            gui_test::TestDisplay() + " " + Quote(gui_test::Studio()) + " " +
            Quote(gui_test::SmallTrace().string()) + " --results " + Quote(bad.string()) +
            " --screenshot " + Quote((dir.path() / "shot.png").string()));
  INFO(r.output);
  CHECK(r.status == 3);  // an error dialog opened; the app kept running
  CHECK(r.output.find(bad.string() + ": line 2, column 'layer'") != std::string::npos);
}
