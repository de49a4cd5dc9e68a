#pragma once
// A labelled grid of coloured cells drawn with ImDrawList (ImPlot is not packaged), used by the
// load and specialization views, and the colour legend that goes with it.
#include <imgui.h>

#include <functional>
#include <string>
#include <vector>

#include "gui/views/colors.h"
#include "gui/views/selection.h"

namespace moe::studio {

struct HeatmapSpec {
  const char* id = "heatmap";
  int rows = 0, cols = 0;
  std::function<double(int row, int col)> value;
  ColorScale scale;
  ImVec2 cell{24, 18};                              // cell size in pixels
  std::vector<std::string> row_labels, col_labels;  // empty: row and column numbers
  const char* value_format = "%.3g";  // values printed in cells that have room; null: none
  // Outlined cells (the selection) and cells with a significance dot.
  std::function<bool(int row, int col)> selected, marked;
};

struct HeatmapHit {
  bool hovered = false, clicked = false;
  int row = -1, col = -1;     // the cell under the mouse
  ImVec2 grid_min, grid_max;  // where the cells were drawn (screen coordinates)
};

// Draws labels and cells at the cursor and advances it; one invisible button covers the cells.
// Each cell is one filled rectangle of scale.Map(value(row, col)).
HeatmapHit DrawHeatmap(const HeatmapSpec& spec);

// A horizontal colour bar from scale.min to scale.max with tick values, and a marked tick at
// `baseline` (skipped when NaN) labelled with `baseline_label`.
void DrawLegend(const ColorScale& scale, float width, double baseline, const char* baseline_label,
                const char* format = "%.3g");

// The width of the legend under a heatmap: the grid's, within 200..420 pixels.
float LegendWidth(const HeatmapHit& hit);

// What a click on an expert's cell does to the selection: select (layer, expert); with Ctrl held
// and the same layer selected, add or remove the expert.
void ClickExpert(Selection& sel, int layer, int expert);

// The cell size that fits cols x rows cells (plus label margins) into `avail`, between the
// given bounds.
ImVec2 FitCells(ImVec2 avail, int rows, int cols, float label_width, float min_size = 6,
                float max_size = 48);

}  // namespace moe::studio
