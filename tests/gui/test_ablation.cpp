// The ablation panel: its background job (analysis RunAblationPass over the small test trace's
// documents, in memory) and the panel drawing the job's results headless.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "gui/model/ablation_job.h"
#include "gui/model/studio_loader.h"
#include "gui/views/ablation_view.h"
#include "gui_test_util.h"

using namespace moe::studio;

namespace {

StudioData SmallTraceData() {
  LoadOptions o;
  o.stats.bootstrap = 0;
  o.stats.permutations = 0;
  return LoadStudioData(gui_test::SmallTrace(), o).data;
}

// Rows of a CSV text: line ends outside quoted fields (token text may hold a newline).
int64_t CsvRows(const std::string& csv) {
  int64_t rows = 0;
  bool quoted = false;
  for (char c : csv) {
    if (c == '"') quoted = !quoted;
    rows += c == '\n' && !quoted;
  }
  return rows;
}

// The panel connected to its job as the shell does, with experts 0 and 2 of layer 1 selected.
struct AblationBench {
  AblationJob job;
  AblationView view;
  Selection sel;
  AblationBench() {
    view.set_job({[this](const AblationRequest& r) { job.Start(r); }, [this] { job.Cancel(); },
                  [this] { return job.Status(); }});
    sel.layer = 1;
    sel.experts = {0, 2};
  }
};

}  // namespace

TEST_CASE("ablation panel: the job gives ΔNLL 0 for the baseline, one row per domain",
          "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  const int M = d.num_domains();
  AblationBench b;
  auto& [job, view, sel] = b;
  // No model is open: the trace's own model runs.
  const AblationRequest request = view.MakeRequest(d, sel);
  CHECK(request.trace == d.trace.info.path);
  CHECK(request.model_dir == d.trace.info.model_path);
  CHECK(request.experts == std::vector<int>{0, 2});
  CHECK(request.mode == moe::DisableMode::kReroute);

  job.Start(request);
  job.Wait();
  const AblationStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.error.empty());
  CHECK(!status.running);
  CHECK(status.progress == 1.0);
  REQUIRE(status.outcome != nullptr);
  const AblationOutcome& o = *status.outcome;
  CHECK(o.domains == d.domains);
  REQUIRE(o.policies.size() == 2);
  const AblationPolicyResult& base = o.policies[0];
  CHECK(base.name == "none");
  REQUIRE(base.delta_nll.size() == static_cast<size_t>(M + 1));
  for (int m = 0; m <= M; ++m) {
    CHECK(base.delta_nll[m] == 0.0);
    CHECK(base.kl[m] == 0.0);
    CHECK(base.agreement[m] == 1.0);
    CHECK(base.tokens[m] > 0);
  }
  const AblationPolicyResult& ablated = o.policies[1];
  CHECK(ablated.name == "L1E0+2-reroute");
  bool changed = false;
  for (int m = 0; m <= M; ++m) {
    changed |= ablated.delta_nll[m] != 0.0;
    CHECK(ablated.delta_nll[m] == Approx(ablated.policy_nll[m] - ablated.base_nll[m]).margin(1e-9));
    CHECK(ablated.delta_low[m] <= ablated.delta_nll[m] + 1e-12);
    CHECK(ablated.delta_high[m] >= ablated.delta_nll[m] - 1e-12);
  }
  CHECK(changed);  // re-routing two of the bundled model's experts changes its predictions

  gui_test::Headless ui(ImVec2(1280, 800));
  ui.Frame(view, d, sel);
  ui.Frame(view, d, sel);
  CHECK(view.drawn_rows() == M + 1);
  std::ostringstream csv;
  view.WriteCsv(d, sel, csv);
  const std::string text = csv.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + 2 * (M + 1));
  CHECK(text.find("none,none,all,") != std::string::npos);

  SECTION("a domain selected runs only its documents") {
    sel.domain = 0;
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    const AblationStatus s = job.Status();
    INFO(s.error);
    REQUIRE(s.outcome != nullptr);
    CHECK(s.outcome->domains == std::vector<std::string>{d.domains[0]});
    CHECK(s.outcome->policies[1].tokens.back() < o.policies[1].tokens.back());
  }

  SECTION("top-r and top-k requests") {
    view.set_target(AblationRequest::Target::kTopK);
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    REQUIRE(job.Status().outcome != nullptr);
    CHECK(job.Status().outcome->policies[1].name == "k1");
    view.set_target(AblationRequest::Target::kTopR);
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    REQUIRE(job.Status().outcome != nullptr);
    CHECK(job.Status().outcome->policies[1].name == "top-r1");
  }
}

namespace {
// Every path under `dir` with its size and modification time.
std::vector<std::string> Listing(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::ostringstream line;
    line << e.path().string() << ' '
         << (e.is_regular_file() ? std::filesystem::file_size(e.path()) : 0) << ' '
         << e.last_write_time().time_since_epoch().count();
    out.push_back(line.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("ablation panel: the run stays in memory and writes no file", "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  AblationView view;
  Selection sel;
  sel.layer = 1;
  sel.experts = {0};
  const AblationRequest request = view.MakeRequest(d, sel);
  // The temp folder, the working folder and the trace's folder must come out unchanged.
  const gui_test::TempDir scratch("ablation_no_files");
  const std::filesystem::path& tmp = scratch.path();
  const std::filesystem::path old_cwd = std::filesystem::current_path();
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir != nullptr ? old_tmpdir : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  std::filesystem::current_path(tmp);
  const std::filesystem::path trace_dir = std::filesystem::path(request.trace).parent_path();
  const std::vector<std::string> before = Listing(trace_dir);
  AblationOutcome outcome;
  std::string error;
  try {
    outcome = RunAblationRequest(request);
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::filesystem::current_path(old_cwd);
  if (old_tmpdir != nullptr)
    ::setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  INFO(error);
  REQUIRE(error.empty());
  REQUIRE(outcome.policies.size() == 2);
  CHECK(outcome.policies[1].tokens.back() > 0);
  CHECK(std::filesystem::is_empty(tmp));
  CHECK(Listing(trace_dir) == before);
}

TEST_CASE("ablation job: cancel and errors", "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  AblationJob job;
  AblationView view;
  Selection sel;
  sel.experts = {1};
  job.Start(view.MakeRequest(d, sel));
  job.Cancel();
  job.Wait();
  AblationStatus s = job.Status();
  CHECK(!s.running);
  CHECK(s.error.empty());
  CHECK((s.cancelled || s.outcome != nullptr));  // it may finish before the cancel lands

  sel.experts.clear();  // nothing selected to disable
  job.Start(view.MakeRequest(d, sel));
  job.Wait();
  s = job.Status();
  CHECK(s.error.find("select the experts") != std::string::npos);

  AblationRequest no_model = view.MakeRequest(d, sel);
  no_model.model_dir.clear();
  job.Start(no_model);
  job.Wait();
  CHECK(job.Status().error.find("no model") != std::string::npos);
}

TEST_CASE("ablation panel: changed predictions and the routing diff of a run", "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  const int L = d.trace.info.num_layers, E = d.trace.info.num_experts;
  AblationBench b;
  auto& [job, view, sel] = b;
  job.Start(view.MakeRequest(d, sel));
  job.Wait();
  const AblationStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.outcome != nullptr);
  const AblationPolicyResult& none = status.outcome->policies[0];
  const AblationPolicyResult& p = status.outcome->policies[1];
  // The analysis API's diff, copied: the baseline changes nothing; re-routing layer 1's experts
  // 0 and 2 moves tokens at layer 1 only, away from 0 and 2.
  CHECK(none.changed_predictions == 0);
  CHECK(none.changes.empty());
  REQUIRE(p.layers == L);
  REQUIRE(p.experts == E);
  CHECK(p.predictions == p.tokens.back());
  CHECK(p.routed_tokens == p.predictions);
  CHECK(p.changed_predictions > 0);
  CHECK(p.changes.size() == static_cast<size_t>(std::min<int64_t>(
                                p.changed_predictions, static_cast<int64_t>(kMaxChangeRows))));
  CHECK(p.changed[0] == 0);
  CHECK(p.changed[1] > 0);
  for (int from = 0; from <= E; ++from)
    for (int to = 0; to <= E; ++to) {
      CHECK(p.Moved(0, from, to) == 0);
      if (p.Moved(1, from, to) > 0) CHECK((from == 0 || from == 2));
    }
  for (const AblationChangeRow& c : p.changes) {
    REQUIRE(c.document >= 0);
    REQUIRE(c.document < static_cast<int64_t>(d.documents.size()));
    CHECK(c.source_id == d.documents[static_cast<size_t>(c.document)].source_id);
    CHECK(c.before_id != c.after_id);
    CHECK(!c.token.empty());
  }

  // Drawn: the changed rows (a scrolled table shows the visible ones), a row per layer, and an
  // (E + 1) x (E + 1) matrix coloured by the moves at the selected layer.
  gui_test::Headless ui(ImVec2(1280, 1400));
  ui.Frame(view, d, sel);
  ui.Frame(view, d, sel);
  CHECK(view.drawn_change_rows() > 0);
  CHECK(view.drawn_change_rows() <= static_cast<int>(p.changes.size()));
  CHECK(view.drawn_layer_rows() == L);
  CHECK(view.routing_layer() == 1);
  const HeatmapHit& grid = view.last_routing_grid();
  const std::vector<gui_test::Quad> cells =
      gui_test::QuadsIn(gui_test::SolidQuads(), grid.grid_min, grid.grid_max);
  REQUIRE(cells.size() == static_cast<size_t>((E + 1) * (E + 1)));
  const ColorScale scale = AblationView::RoutingScale(p, 1);
  const float cw = (grid.grid_max.x - grid.grid_min.x) / (E + 1),
              ch = (grid.grid_max.y - grid.grid_min.y) / (E + 1);
  for (const gui_test::Quad& q : cells) {
    const int r = static_cast<int>((q.center().y - grid.grid_min.y) / ch);
    const int c = static_cast<int>((q.center().x - grid.grid_min.x) / cw);
    INFO("from " << r << " to " << c);
    CHECK(q.col == scale.Map(AblationView::RoutingCell(p, 1, r, c)));
  }

  // Clicking a changed prediction selects its token in its document.
  const AblationChangeRow& first = p.changes.front();
  sel.document = -1;
  // The table's first body row sits one row below its header, under the routing matrix's top.
  for (float y = grid.grid_min.y - 80; y < grid.grid_max.y && sel.document < 0; y += 4) {
    ui.Frame(view, d, sel, ImVec2(40, y), true);
    ui.Frame(view, d, sel, ImVec2(40, y), false);
  }
  CHECK(sel.document == first.document);
  CHECK(sel.token_begin == first.position);
  CHECK(sel.token_end == first.position + 1);

  // Both extra tables: a header and one row per change, or per non-zero move.
  REQUIRE(view.ExtraCsvTables() == std::vector<std::string>{"changes", "routing"});
  std::ostringstream changes, routing;
  view.WriteExtraCsv("changes", d, sel, changes);
  view.WriteExtraCsv("routing", d, sel, routing);
  const std::string ct = changes.str(), rt = routing.str();
  CHECK(CsvRows(ct) == 1 + static_cast<int64_t>(p.changes.size()));
  int64_t cells_moved = 0;
  for (int64_t v : p.moved) cells_moved += v > 0;
  CHECK(std::count(rt.begin(), rt.end(), '\n') == 1 + cells_moved);
  CHECK(rt.rfind("policy,layer,from,to,tokens\n", 0) == 0);
}
