// The token map and the overview drawn headless over hand-made data with known values, and
// every view at once (no trace, a wide model): what each frame drew is read back from ImGui's
// draw lists. The heatmap views are in test_heatmap_views.cpp.
#include <algorithm>
#include <sstream>

#include "gui/views/colors.h"
#include "gui/views/load_view.h"
#include "gui/views/overview_view.h"
#include "gui/views/token_map_view.h"
#include "gui_test_util.h"

using namespace moe::studio;
using gui_test::Headless;
using gui_test::Quad;

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
