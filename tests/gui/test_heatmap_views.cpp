// The heatmap views (expert load, specialization, co-activation and transitions) and their
// colour scales, drawn headless over hand-made data with known values: what each frame drew is
// read back from ImGui's draw lists. The token map, overview and every-view checks are in
// test_views.cpp.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "gui/views/coactivation_view.h"
#include "gui/views/colors.h"
#include "gui/views/load_view.h"
#include "gui/views/specialization_view.h"
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
