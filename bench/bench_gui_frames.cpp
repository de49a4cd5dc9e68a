// moescope_bench_gui_frames: CPU time to build one frame of moescope-studio's heaviest views,
// headless (an ImGui context without a window or renderer, as the view tests use):
//   overview        the overview view over the same data: the baseline a frame cannot beat;
//   heatmap         the expert-load view of a 32-layer x 16-expert trace, mouse over a cell;
//   token map       a 100k-token document, scrolled to a new place every frame.
// Each reports the median over --frames frames (after one untimed frame that lays the document
// out), its ratio to the baseline of the same run, and its share of a 60 Hz frame (16.7 ms).
// Rendering on the GPU is not included (the app's llvmpipe figure is in docs/gui.md).
//
//   moescope_bench_gui_frames [--frames N]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "gui/views/load_view.h"
#include "gui/views/overview_view.h"
#include "gui/views/token_map_view.h"
#include "headless_views.h"

namespace {

using moe::studio::Headless;
using moe::studio::Selection;
using moe::studio::StudioData;

// Median milliseconds of `frames` calls of `frame(i)`.
double MedianFrameMs(int frames, const std::function<void(int)>& frame) {
  std::vector<double> ms;
  for (int i = 0; i < frames; ++i) {
    const auto start = std::chrono::steady_clock::now();
    frame(i);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Frame-building time of moescope-studio's heaviest views, headless");
  int frames = 200;
  app.add_option("--frames", frames, "Timed frames per view")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const int L = 32, E = 16;
  const int64_t T = 100000;
  StudioData data = moe::studio::MakeData(4, L, E);
  data.document = moe::studio::MakeDocument(0, T, L, E);
  Headless ui(ImVec2(1600, 1000));
  Selection selection;

  moe::studio::OverviewView overview;
  ui.Frame(overview, data, selection);
  const double base = MedianFrameMs(frames, [&](int) { ui.Frame(overview, data, selection); });

  moe::studio::LoadView load;
  ui.Frame(load, data, selection);
  const double heatmap =
      MedianFrameMs(frames, [&](int) { ui.Frame(load, data, selection, ImVec2(800, 300)); });

  moe::studio::TokenMapView map;
  const auto start = std::chrono::steady_clock::now();
  ui.Frame(map, data, selection);  // lays the document out once
  const double layout =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double scroll = MedianFrameMs(frames, [&](int i) {
    map.ScrollToToken((static_cast<int64_t>(i) * 4999) % T);
    ui.Frame(map, data, selection);
  });

  constexpr double kFrameBudgetMs = 1000.0 / 60;
  std::printf("%d frames per view, medians; ratio = view / overview; budget = share of %.1f ms\n",
              frames, kFrameBudgetMs);
  const auto row = [&](const char* name, double ms) {
    std::printf("%-34s %8.3f ms  ratio %6.2f  budget %5.1f%%\n", name, ms, ms / base,
                100.0 * ms / kFrameBudgetMs);
  };
  row("overview (baseline)", base);
  row("heatmap 32 layers x 16 experts", heatmap);
  row("token map 100k tokens, scrolling", scroll);
  std::printf("token map 100k tokens, first frame (layout once): %.1f ms\n", layout);
  return 0;
}
