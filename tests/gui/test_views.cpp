// The views drawn headless over hand-made data with known values: what each frame drew is read
// back from ImGui's draw lists.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "gui/views/coactivation_view.h"
#include "gui/views/colors.h"
#include "gui/views/load_view.h"
#include "gui/views/overview_view.h"
#include "gui/views/specialization_view.h"
#include "gui/views/token_map_view.h"
#include "gui_test_util.h"

using namespace moe::studio;
using gui_test::Headless;
using gui_test::Quad;

namespace {

ImVec2 Center(ImVec2 grid_min, ImVec2 grid_max, int rows, int cols, int r, int c) {
  const float w = (grid_max.x - grid_min.x) / cols, h = (grid_max.y - grid_min.y) / rows;
  return ImVec2(grid_min.x + (c + 0.5f) * w, grid_min.y + (r + 0.5f) * h);
}

// The specialization legend runs from the smallest to the largest lift drawn at `layer`, white
// at 1, and the cells holding those lifts get the palette's end colours.
void CheckLegendSpansCells(const SpecializationView& view, const ExpertMetric& lift, int layer,
                           const std::vector<Quad>& cells) {
  double lo = INFINITY, hi = -INFINITY;
  for (int m = 0; m + 1 < lift.domains; ++m)
    for (int e = 0; e < lift.experts; ++e) {
      lo = std::min(lo, lift.At(m, layer, e));
      hi = std::max(hi, lift.At(m, layer, e));
    }
  const ColorScale& legend = view.last_legend();
  INFO("layer " << layer << ": lifts " << lo << ".." << hi << ", legend " << legend.ValueAt(0)
                << ".." << legend.ValueAt(1));
  CHECK(legend.ValueAt(0) == Approx(lo));
  CHECK(legend.ValueAt(1) == Approx(hi));
  CHECK(legend.Map(1.0) == Diverging(0.5));
  std::set<ImU32> colours;
  for (const Quad& q : cells) colours.insert(q.col);
  CHECK(colours.count(Diverging(0)) == 1);
  CHECK(colours.count(Diverging(1)) == 1);
}

}  // namespace

TEST_CASE("colour scales", "[gui][views]") {
  ColorScale s;
  s.kind = ColorScale::Kind::kDiverging;
  s.log_ratio = true;
  s.center = 1;
  s.min = 0.25;
  s.max = 4;
  CHECK(s.Position(1.0) == Approx(0.5));
  CHECK(s.Position(2.0) == Approx(0.75));
  CHECK(s.Position(0.5) == Approx(0.25));
  CHECK(s.Position(0.0) == 0.0);
  CHECK(s.ValueAt(0.75) == Approx(2.0));
  CHECK(s.Map(1.0) == IM_COL32(247, 247, 247, 255));  // white at the baseline
  CHECK(s.Map(NAN) == kMissingColor);
  ColorScale two;  // two slopes: 0..1 on the blue half, 1..4 on the red half
  two.kind = ColorScale::Kind::kDiverging;
  two.symmetric = false;
  two.center = 1;
  two.min = 0;
  two.max = 4;
  CHECK(two.Position(0.0) == 0.0);
  CHECK(two.Position(0.5) == Approx(0.25));
  CHECK(two.Position(1.0) == 0.5);
  CHECK(two.Position(2.5) == Approx(0.75));
  CHECK(two.Position(4.0) == 1.0);
  CHECK(two.ValueAt(0.0) == 0.0);
  CHECK(two.ValueAt(0.75) == Approx(2.5));
  CHECK(two.ValueAt(1.0) == 4.0);
  ColorScale q;
  q.min = 0;
  q.max = 10;
  CHECK(q.Map(0) == Viridis(0));
  CHECK(q.Map(10) == Viridis(1));
  CHECK(q.Map(20) == Viridis(1));
  // Experts get distinct colours.
  for (int a = 0; a < 16; ++a)
    for (int b = a + 1; b < 16; ++b) CHECK(ExpertColor(a, 16) != ExpertColor(b, 16));
  for (int a = 0; a < 64; ++a) CHECK(ExpertColor(a, 64) != ExpertColor(a + 1, 64));
}

TEST_CASE("expert load heatmap draws one cell per layer and expert, coloured by value",
          "[gui][views]") {
  const int M = 2, L = 3, E = 4;
  const StudioData data = gui_test::MakeData(M, L, E);
  Headless ui;
  LoadView view;
  Selection sel;
  const ExpertMetric& m = *data.FindExpertMetric(moe::Metric::kRelativeLoad);

  for (int domain : {-1, 0, 1}) {
    sel.domain = domain;
    ui.Frame(view, data, sel);
    const HeatmapHit& grid = view.last_heatmap();
    const std::vector<Quad> cells =
        gui_test::QuadsIn(gui_test::SolidQuads(), grid.grid_min, grid.grid_max);
    REQUIRE(cells.size() == static_cast<size_t>(L * E));
    const int row = DomainRow(data, domain);
    const ColorScale scale = view.ScaleFor(m, {row});
    CHECK(scale.kind == ColorScale::Kind::kDiverging);  // relative load has baseline 1
    CHECK(scale.center == 1.0);
    const float cw = (grid.grid_max.x - grid.grid_min.x) / E,
                ch = (grid.grid_max.y - grid.grid_min.y) / L;
    std::map<std::pair<int, int>, ImU32> seen;
    for (const Quad& q : cells) {
      const int l = static_cast<int>((q.center().y - grid.grid_min.y) / ch);
      const int e = static_cast<int>((q.center().x - grid.grid_min.x) / cw);
      seen[{l, e}] = q.col;
    }
    REQUIRE(seen.size() == static_cast<size_t>(L * E));
    for (int l = 0; l < L; ++l)
      for (int e = 0; e < E; ++e) {
        INFO("domain " << domain << " layer " << l << " expert " << e);
        CHECK(seen[{l, e}] == scale.Map(m.At(row, l, e)));
      }
    // Values 0.25, 0.75, 1.25 and 1.75 of a baseline of 1: two cells bluish, two reddish.
    const ImU32 low = seen[{0, (4 - row % 4) % 4}];  // (r + l + e) % 4 == 0 -> 0.25
    CHECK(((low >> IM_COL32_B_SHIFT) & 0xFF) > ((low >> IM_COL32_R_SHIFT) & 0xFF));
  }

  SECTION("hover shows a tooltip, a click selects (layer, expert), ctrl+click adds") {
    sel = Selection{};
    ui.Frame(view, data, sel);
    const HeatmapHit grid = view.last_heatmap();
    const ImVec2 p = Center(grid.grid_min, grid.grid_max, L, E, 2, 1);
    ui.Frame(view, data, sel, p);
    CHECK(view.last_heatmap().hovered);
    CHECK(view.last_heatmap().row == 2);
    CHECK(view.last_heatmap().col == 1);
    CHECK(gui_test::TooltipShown());
    ui.Frame(view, data, sel, p, true);
    CHECK(sel.layer == 2);
    CHECK(sel.experts == std::vector<int>{1});
    ui.Frame(view, data, sel, p, false);
    const ImVec2 q = Center(grid.grid_min, grid.grid_max, L, E, 2, 3);
    ui.Frame(view, data, sel, q, false, true);
    ui.Frame(view, data, sel, q, true, true);
    CHECK(sel.experts == std::vector<int>{1, 3});
  }

  SECTION("facets: one heatmap per domain and one for all domains") {
    view.set_facets(true);
    ui.Frame(view, data, sel);
    std::vector<int> rows = {0, 1, 2};
    const ColorScale scale = view.ScaleFor(m, rows);
    std::multiset<ImU32> expected, drawn;
    for (int r = 0; r <= M; ++r)
      for (int l = 0; l < L; ++l)
        for (int e = 0; e < E; ++e) expected.insert(scale.Map(m.At(r, l, e)));
    for (const Quad& q : gui_test::SolidQuads())
      if (expected.count(q.col)) drawn.insert(q.col);
    for (ImU32 c : expected) CHECK(drawn.count(c) >= expected.count(c));
  }

  SECTION("sequential scale when diverging is off") {
    view.set_diverging(false);
    const ColorScale s = view.ScaleFor(m, {M});
    CHECK(s.kind == ColorScale::Kind::kSequential);
    CHECK(s.min == 0);
    CHECK(s.max == 1.75);
  }

  SECTION("CSV holds every domain, layer and expert of the metric") {
    std::ostringstream out;
    view.WriteCsv(data, sel, out);
    const std::string csv = out.str();
    CHECK(csv.rfind("metric,domain,layer,expert,value,ci_low,ci_high,baseline,n\n", 0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + (M + 1) * L * E);
    CHECK(csv.find("relative_load,domain1,2,3,") != std::string::npos);
  }
}

TEST_CASE("specialization heatmap draws domain x expert lift at the selected layer",
          "[gui][views]") {
  const int M = 3, L = 2, E = 5;
  const StudioData data = gui_test::MakeData(M, L, E);
  Headless ui;
  SpecializationView view;
  Selection sel;
  const ExpertMetric& lift = *data.FindExpertMetric(moe::Metric::kDomainSpecLiftTopk);
  for (int layer : {0, 1}) {
    sel.layer = layer;
    ui.Frame(view, data, sel);
    const HeatmapHit& grid = view.last_heatmap();
    const auto cells = gui_test::QuadsIn(gui_test::SolidQuads(), grid.grid_min, grid.grid_max);
    REQUIRE(cells.size() == static_cast<size_t>(M * E));
    const ColorScale scale = view.ScaleFor(lift, layer);
    const float cw = (grid.grid_max.x - grid.grid_min.x) / E,
                ch = (grid.grid_max.y - grid.grid_min.y) / M;
    for (const Quad& q : cells) {
      const int m = static_cast<int>((q.center().y - grid.grid_min.y) / ch);
      const int e = static_cast<int>((q.center().x - grid.grid_min.x) / cw);
      CHECK(q.col == scale.Map(lift.At(m, layer, e)));
    }
    CheckLegendSpansCells(view, lift, layer, cells);
  }
  SECTION("the legend follows the cells shown: a zero lift and one at E/K") {
    StudioData extreme = data;
    ExpertMetric& x = *std::find_if(
        extreme.expert_metrics.begin(), extreme.expert_metrics.end(),
        [](const ExpertMetric& g) { return g.id == moe::Metric::kDomainSpecLiftTopk; });
    x.value[x.Index(0, 1, 2)] = 0.0;      // a domain that never uses expert 2
    x.value[x.Index(2, 1, 3)] = E / 2.0;  // one that always does (K = 2): the largest lift
    sel.layer = 1;
    ui.Frame(view, extreme, sel);
    const HeatmapHit& grid = view.last_heatmap();
    CHECK(view.last_legend().ValueAt(0) == 0.0);
    CHECK(view.last_legend().ValueAt(1) == E / 2.0);
    CheckLegendSpansCells(view, x, 1,
                          gui_test::QuadsIn(gui_test::SolidQuads(), grid.grid_min, grid.grid_max));
  }
  // A click selects the expert and the domain.
  ui.Frame(view, data, sel);
  const HeatmapHit grid = view.last_heatmap();
  const ImVec2 p = Center(grid.grid_min, grid.grid_max, M, E, 2, 4);
  ui.Frame(view, data, sel, p);
  CHECK(gui_test::TooltipShown());
  ui.Frame(view, data, sel, p, true);
  CHECK(sel.domain == 2);
  CHECK(sel.experts == std::vector<int>{4});
}

TEST_CASE("token map draws the document's tokens coloured by their first expert", "[gui][views]") {
  const int L = 2, E = 4;
  StudioData data = gui_test::MakeData(2, L, E);
  const auto doc = gui_test::MakeDocument(1, 60, L, E);
  data.document = doc;
  Headless ui(ImVec2(1600, 1000));
  TokenMapView view;
  Selection sel;

  SECTION("waits for the selected document") {
    sel.document = 0;
    ui.Frame(view, data, sel);
    CHECK(view.last_frame().drawn_tokens == 0);
  }

  sel.document = 1;
  for (int layer : {0, 1}) {
    sel.layer = layer;
    ui.Frame(view, data, sel);
    REQUIRE(view.last_frame().drawn_tokens == doc->size());
    const auto quads = gui_test::SolidQuads();
    for (int64_t t = 0; t < doc->size(); ++t) {
      ImVec2 a, b;
      REQUIRE(view.TokenRect(t, &a, &b));
      const auto in = gui_test::QuadsIn(quads, a, b);
      bool found = false;
      for (const Quad& q : in)
        found |= q.min.x == a.x && q.min.y == a.y && q.max.x == b.x && q.max.y == b.y &&
                 q.col == ExpertColor(static_cast<int>((t + layer) % E), E);
      INFO("token " << t << " layer " << layer);
      CHECK(found);
    }
  }

  SECTION("surprisal underlines: one per token that has a previous prediction") {
    sel.layer = 0;
    ui.Frame(view, data, sel);
    int underlines = 0;
    for (const Quad& q : gui_test::SolidQuads())
      if ((q.col & 0x00FFFFFF) == (IM_COL32(230, 30, 30, 0) & 0x00FFFFFF)) ++underlines;
    CHECK(underlines == doc->size() - 1);
  }

  SECTION("hover lists the token's experts; a click selects it; shift+click extends") {
    ui.Frame(view, data, sel);
    ImVec2 a, b;
    REQUIRE(view.TokenRect(7, &a, &b));
    const ImVec2 p((a.x + b.x) / 2, (a.y + b.y) / 2);
    ui.Frame(view, data, sel, p);
    CHECK(view.last_frame().hovered_token == 7);
    CHECK(gui_test::TooltipShown());
    ui.Frame(view, data, sel, p, true);
    CHECK(sel.token_begin == 7);
    CHECK(sel.token_end == 8);
    ui.Frame(view, data, sel, p, false);
    REQUIRE(view.TokenRect(12, &a, &b));
    ImGui::GetIO().KeyShift = true;
    ui.Frame(view, data, sel, ImVec2((a.x + b.x) / 2, (a.y + b.y) / 2));
    ImGui::GetIO().KeyShift = true;
    ui.Frame(view, data, sel, ImVec2((a.x + b.x) / 2, (a.y + b.y) / 2), true);
    ImGui::GetIO().KeyShift = false;
    CHECK(sel.token_begin == 7);
    CHECK(sel.token_end == 13);
  }

  SECTION("selected experts dim the tokens not routed to them") {
    sel.layer = 0;
    sel.experts = {0};
    ui.Frame(view, data, sel);
    const auto quads = gui_test::SolidQuads();
    int dimmed = 0, full = 0;
    for (int64_t t = 0; t < doc->size(); ++t) {
      ImVec2 a, b;
      REQUIRE(view.TokenRect(t, &a, &b));
      for (const Quad& q : gui_test::QuadsIn(quads, a, b))
        if (q.min.x == a.x && q.max.y == b.y && q.min.y == a.y) {
          const bool routed = t % E == 0 || (t + 1) % E == 0;  // expert 0 first or second
          const int alpha = static_cast<int>((q.col >> IM_COL32_A_SHIFT) & 0xFF);
          if (routed)
            full += alpha == 255;
          else
            dimmed += alpha < 255;
        }
    }
    CHECK(full == 30);  // t % 4 in {0, 3}
    CHECK(dimmed == 30);
  }

  SECTION("CSV: one row per token, layer and selection") {
    std::ostringstream out;
    view.WriteCsv(data, sel, out);
    const std::string csv = out.str();
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + doc->size() * L * 2);
  }
}

TEST_CASE("co-activation and transition heatmaps draw E x E cells in the seriation order",
          "[gui][views]") {
  const int M = 2, L = 3, E = 5;
  const StudioData data = gui_test::MakeData(M, L, E);
  const PairTables& t = data.pairs;
  Headless ui;
  CoactivationView view;
  Selection sel;
  sel.layer = 1;
  using Mode = CoactivationView::Mode;

  // Reads the cells drawn and checks each against the rate of its (row, column) experts.
  auto check_cells = [&](Mode mode, int domain_row, const std::vector<int>& rows,
                         const std::vector<int>& cols) {
    const HeatmapHit& grid = view.last_heatmap();
    const std::vector<Quad> cells =
        gui_test::QuadsIn(gui_test::SolidQuads(), grid.grid_min, grid.grid_max);
    REQUIRE(cells.size() == static_cast<size_t>(E * E));
    const ColorScale scale = CoactivationView::ScaleFor(t, mode, domain_row, 1);
    const float cw = (grid.grid_max.x - grid.grid_min.x) / E;
    const float ch = (grid.grid_max.y - grid.grid_min.y) / E;
    for (const Quad& q : cells) {
      const int r = static_cast<int>((q.center().y - grid.grid_min.y) / ch);
      const int c = static_cast<int>((q.center().x - grid.grid_min.x) / cw);
      INFO("row " << r << " col " << c);
      CHECK(q.col == scale.Map(CoactivationView::Rate(t, mode, domain_row, 1, rows[r], cols[c])));
    }
  };
  auto is_permutation = [](std::vector<int> v) {
    std::sort(v.begin(), v.end());
    for (int k = 0; k < static_cast<int>(v.size()); ++k)
      if (v[k] != k) return false;
    return true;
  };

  // Co-activation, seriated: rows and columns both follow the (reversed) order.
  ui.Frame(view, data, sel);
  CHECK(view.shown_layer() == 1);
  REQUIRE(is_permutation(view.row_experts()));
  const std::vector<int> co_order(t.coactivation_order.begin() + t.CoOrder(M, 1),
                                  t.coactivation_order.begin() + t.CoOrder(M, 1) + E);
  CHECK(view.row_experts() == co_order);
  CHECK(view.col_experts() == co_order);
  CHECK(view.row_experts() == std::vector<int>{4, 3, 2, 1, 0});
  check_cells(Mode::kCoactivation, M, view.row_experts(), view.col_experts());

  // Seriation off: natural order, different cells.
  view.set_seriate(false);
  ui.Frame(view, data, sel);
  CHECK(view.row_experts() == std::vector<int>{0, 1, 2, 3, 4});
  check_cells(Mode::kCoactivation, M, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4});
  view.set_seriate(true);

  // Transitions of domain 0: rows and columns have their own orders.
  view.set_mode(Mode::kTransitions);
  sel.domain = 0;
  ui.Frame(view, data, sel);
  REQUIRE(is_permutation(view.row_experts()));
  REQUIRE(is_permutation(view.col_experts()));
  CHECK(view.row_experts() == std::vector<int>{4, 3, 2, 1, 0});
  CHECK(view.col_experts() == std::vector<int>{1, 2, 3, 4, 0});
  check_cells(Mode::kTransitions, 0, view.row_experts(), view.col_experts());

  SECTION("hover shows a tooltip; a click selects the row's expert, ctrl+click adds") {
    const HeatmapHit grid = view.last_heatmap();
    const ImVec2 p = Center(grid.grid_min, grid.grid_max, E, E, 0, 2);  // row 0 = expert 4
    ui.Frame(view, data, sel, p);
    CHECK(view.last_heatmap().hovered);
    CHECK(gui_test::TooltipShown());
    ui.Frame(view, data, sel, p, true);
    CHECK(sel.layer == 1);
    CHECK(sel.experts == std::vector<int>{4});
    ui.Frame(view, data, sel, p, false);
    const ImVec2 q = Center(grid.grid_min, grid.grid_max, E, E, 3, 2);  // row 3 = expert 1
    ui.Frame(view, data, sel, q, false, true);
    ui.Frame(view, data, sel, q, true, true);
    CHECK(sel.experts == std::vector<int>{1, 4});
  }

  SECTION("CSV: both tables, every domain row and layer, with seriation positions") {
    std::ostringstream out;
    view.WriteCsv(data, sel, out);
    const std::string csv = out.str();
    CHECK(csv.rfind("table,domain,layer_from,layer_to,expert_i,expert_j,order_i,order_j,count,"
                    "count_i,p_j_given_i\n",
                    0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') ==
          1 + (M + 1) * L * E * (E - 1) + (M + 1) * (L - 1) * E * E);
    // Expert 4 is first in the reversed co-activation order; in the transitions' columns expert
    // 0 is last (position 4).
    CHECK(csv.find("coactivation,all,1,1,4,0,0,4,") != std::string::npos);
    CHECK(csv.find("transitions,domain0,1,2,0,0,4,4,") != std::string::npos);
  }
}

TEST_CASE("token map of a 100k-token document draws only the visible lines", "[gui][views]") {
  const int L = 32, E = 16;
  StudioData data = gui_test::MakeData(2, L, E);
  const int64_t T = 100000;
  data.document = gui_test::MakeDocument(0, T, L, E);
  Headless ui(ImVec2(1600, 1000));
  TokenMapView view;
  Selection sel;
  ui.Frame(view, data, sel);  // lays the document out once
  CHECK(view.last_frame().lines > 1000);
  CHECK(view.last_frame().drawn_tokens > 100);
  CHECK(view.last_frame().drawn_tokens < 5000);
  CHECK(view.last_frame().first_token == 0);

  view.ScrollToToken(90000);
  ui.Frame(view, data, sel);
  ui.Frame(view, data, sel);
  CHECK(view.last_frame().first_token > 89000);
  CHECK(view.last_frame().first_token <= 90000);

  // Frame times are measured by bench/bench_gui_frames.cpp, not asserted here.
}

TEST_CASE("a 32-layer x 16-expert heatmap draws one cell per layer and expert", "[gui][views]") {
  const StudioData data = gui_test::MakeData(4, 32, 16);
  Headless ui(ImVec2(1600, 1000));
  LoadView view;
  Selection sel;
  ui.Frame(view, data, sel);
  CHECK(gui_test::QuadsIn(gui_test::SolidQuads(), view.last_heatmap().grid_min,
                          view.last_heatmap().grid_max)
            .size() == 32 * 16);
}

TEST_CASE("overview lists the trace's facts; clicking a domain selects it", "[gui][views]") {
  StudioData data = gui_test::MakeData(3, 2, 4);
  data.notes.push_back("a note");
  const std::vector<OverviewRow> rows = OverviewRows(data);
  auto value = [&](const std::string& key) {
    for (const OverviewRow& r : rows)
      if (r.key == key) return r.value;
    return std::string("(missing)");
  };
  CHECK(value("documents") == "3");
  CHECK(value("tokens") == "300");
  CHECK(value("experts") == "4");
  CHECK(value("routing policy") == "none (the model's own routing)");
  CHECK(value("domain2") == "1 documents, 100 tokens");
  CHECK(value("vocab_size") == "512");
  // The windowing rule in words (the loader parses the attribute; test_loader.cpp reads it from
  // a trace).
  CHECK(value("windowing") == "not recorded");
  auto windowing = [&] {
    for (const OverviewRow& r : OverviewRows(data))
      if (r.key == "windowing") return r.value;
    return std::string("(missing)");
  };
  data.trace.info.windowing = R"({"max_window":256,"stride":192,"context_length":4096})";
  data.trace.windowing = {true, 256, 192, 4096};
  CHECK(windowing() ==
        "window 256 tokens, stride 192 (each later window re-runs 64 tokens as context only), "
        "context length 4096");
  data.trace.windowing.stride = 256;
  CHECK(windowing() ==
        "window 256 tokens, stride 256 (windows do not overlap), context length 4096");
  data.trace.windowing = {};
  data.trace.info.windowing = "not json";
  CHECK(windowing() == "not json");  // shown as written
  Headless ui;
  OverviewView view;
  Selection sel;
  ui.Frame(view, data, sel);
  ui.Frame(view, data, sel);
  std::ostringstream out;
  view.WriteCsv(data, sel, out);
  CHECK(out.str().find("domains,domain1,1 documents, 100 tokens") == std::string::npos);
  CHECK(out.str().find("domains,domain1,\"1 documents, 100 tokens\"") != std::string::npos);
}

TEST_CASE("every view draws with no trace open", "[gui][views]") {
  const StudioData empty;
  Headless ui;
  Selection sel;
  for (auto& v : MakeAllViews()) {
    ui.Frame(*v, empty, sel);
    std::ostringstream out;
    v->WriteCsv(empty, sel, out);
    CHECK(!out.str().empty());
  }
}

TEST_CASE("every view draws a wide model (64 experts) in a small window", "[gui][views]") {
  StudioData data = gui_test::MakeData(3, 4, 64);
  data.document = gui_test::MakeDocument(0, 500, 4, 64);
  Selection sel;
  sel.experts = {3, 63};
  for (ImVec2 size : {ImVec2(1600, 1000), ImVec2(420, 300)}) {
    Headless ui(size);
    for (auto& v : MakeAllViews()) {
      ui.Frame(*v, data, sel);
      ui.Frame(*v, data, sel, ImVec2(size.x / 2, size.y / 2));
      if (auto* load = dynamic_cast<LoadView*>(v.get())) {
        const auto cells = gui_test::QuadsIn(gui_test::SolidQuads(), load->last_heatmap().grid_min,
                                             load->last_heatmap().grid_max);
        CHECK(cells.size() >= static_cast<size_t>(4 * 64));
      }
    }
  }
}
