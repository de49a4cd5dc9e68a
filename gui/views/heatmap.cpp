#include "gui/views/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace moe::studio {

ImVec2 FitCells(ImVec2 avail, int rows, int cols, float label_width, float min_size,
                float max_size) {
  const float line = ImGui::GetTextLineHeightWithSpacing();
  float w = cols > 0 ? (avail.x - label_width) / cols : max_size;
  float h = rows > 0 ? (avail.y - line) / rows : max_size;
  w = std::clamp(std::floor(w), min_size, max_size);
  h = std::clamp(std::floor(h), min_size, max_size * 0.75f);
  return ImVec2(w, h);
}

namespace {

std::string RowLabel(const HeatmapSpec& s, int r) {
  return r < static_cast<int>(s.row_labels.size()) ? s.row_labels[r] : std::to_string(r);
}

std::string ColLabel(const HeatmapSpec& s, int c) {
  return c < static_cast<int>(s.col_labels.size()) ? s.col_labels[c] : std::to_string(c);
}

// Row labels left of the cells and column labels above them, as many as fit without
// overlapping. Returns the top-left corner of the cells.
ImVec2 DrawLabels(ImDrawList* dl, const HeatmapSpec& s) {
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  const float line = ImGui::GetTextLineHeight();
  float label_w = 0;
  for (int r = 0; r < s.rows; ++r)
    label_w = std::max(label_w, ImGui::CalcTextSize(RowLabel(s, r).c_str()).x);
  label_w += 6;

  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 grid(origin.x + label_w, origin.y + line + 2);
  float widest = 0;
  for (int c = 0; c < s.cols; ++c)
    widest = std::max(widest, ImGui::CalcTextSize(ColLabel(s, c).c_str()).x);
  const int col_step = std::max(1, static_cast<int>(std::ceil((widest + 4) / s.cell.x)));
  for (int c = 0; c < s.cols; c += col_step) {
    const std::string t = ColLabel(s, c);
    const float tw = ImGui::CalcTextSize(t.c_str()).x;
    dl->AddText(ImVec2(grid.x + (c + 0.5f) * s.cell.x - tw / 2, origin.y), text, t.c_str());
  }
  const int row_step = std::max(1, static_cast<int>(std::ceil(line / s.cell.y)));
  for (int r = 0; r < s.rows; r += row_step) {
    const std::string t = RowLabel(s, r);
    dl->AddText(ImVec2(origin.x, grid.y + (r + 0.5f) * s.cell.y - line / 2), text, t.c_str());
  }
  return grid;
}

// One filled rectangle per cell, `gap` pixels apart.
void DrawCells(ImDrawList* dl, const HeatmapSpec& s, ImVec2 grid, float gap) {
  for (int r = 0; r < s.rows; ++r)
    for (int c = 0; c < s.cols; ++c) {
      const ImVec2 a(grid.x + c * s.cell.x, grid.y + r * s.cell.y);
      const ImVec2 b(a.x + s.cell.x - gap, a.y + s.cell.y - gap);
      dl->AddRectFilled(a, b, s.scale.Map(s.value(r, c)));
    }
}

// The values printed in the cells, where they fit.
void DrawValues(ImDrawList* dl, const HeatmapSpec& s, ImVec2 grid, float gap) {
  if (s.value_format == nullptr || s.cell.y < ImGui::GetTextLineHeight() + 2) return;
  char buf[32];
  for (int r = 0; r < s.rows; ++r)
    for (int c = 0; c < s.cols; ++c) {
      const double v = s.value(r, c);
      if (std::isnan(v)) continue;
      std::snprintf(buf, sizeof(buf), s.value_format, v);
      const ImVec2 ts = ImGui::CalcTextSize(buf);
      if (ts.x + 4 > s.cell.x) continue;
      const ImVec2 a(grid.x + c * s.cell.x, grid.y + r * s.cell.y);
      const bool mark = s.marked && s.marked(r, c);
      // With a significance dot the value moves to the cell's lower part.
      const float y = mark ? a.y + s.cell.y - gap - ts.y - 1 : a.y + (s.cell.y - gap - ts.y) / 2;
      if (mark && s.cell.y < 2 * ts.y + 4) continue;
      dl->AddText(ImVec2(a.x + (s.cell.x - gap - ts.x) / 2, y), ContrastText(s.scale.Map(v)), buf);
    }
}

// Significance dots and selection outlines, on top of cells and values.
void DrawMarks(ImDrawList* dl, const HeatmapSpec& s, ImVec2 grid, float gap) {
  const float line = ImGui::GetTextLineHeight();
  for (int r = 0; r < s.rows; ++r)
    for (int c = 0; c < s.cols; ++c) {
      const ImVec2 a(grid.x + c * s.cell.x, grid.y + r * s.cell.y);
      const ImVec2 b(a.x + s.cell.x - gap, a.y + s.cell.y - gap);
      if (s.marked && s.marked(r, c)) {
        const ImU32 fill = s.scale.Map(s.value(r, c));
        const float radius = std::max(1.5f, std::min(s.cell.x, s.cell.y) * 0.12f);
        const bool room = s.value_format != nullptr && s.cell.y >= 2 * line + 4;
        const float cy = room ? a.y + radius + 4 : (a.y + b.y) / 2;
        dl->AddCircleFilled(ImVec2((a.x + b.x) / 2, cy), radius, ContrastText(fill), 8);
      }
      if (s.selected && s.selected(r, c)) {
        dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1), IM_COL32(0, 0, 0, 255), 0,
                    0, 3);
        dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1),
                    IM_COL32(255, 255, 255, 255), 0, 0, 1.5f);
      }
    }
}

// One invisible button over the cells: which cell the mouse is on, and whether it was clicked.
HeatmapHit HitTest(const HeatmapSpec& s, ImVec2 grid) {
  HeatmapHit hit;
  hit.grid_min = grid;
  hit.grid_max = ImVec2(grid.x + s.cols * s.cell.x, grid.y + s.rows * s.cell.y);
  ImGui::SetCursorScreenPos(grid);
  ImGui::PushID(s.id);
  const ImVec2 size(std::max(1.0f, s.cols * s.cell.x), std::max(1.0f, s.rows * s.cell.y));
  ImGui::InvisibleButton("cells", size);
  ImGui::PopID();
  if (ImGui::IsItemHovered()) {
    const ImVec2 m = ImGui::GetIO().MousePos;
    const int c = static_cast<int>((m.x - grid.x) / s.cell.x);
    const int r = static_cast<int>((m.y - grid.y) / s.cell.y);
    if (r >= 0 && r < s.rows && c >= 0 && c < s.cols) {
      hit.hovered = true;
      hit.row = r;
      hit.col = c;
      hit.clicked = ImGui::IsItemClicked(ImGuiMouseButton_Left);
    }
  }
  return hit;
}

}  // namespace

HeatmapHit DrawHeatmap(const HeatmapSpec& s) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 grid = DrawLabels(dl, s);
  // A 1 px gap between cells when they are large enough to afford it.
  const float gap = s.cell.x >= 10 && s.cell.y >= 10 ? 1.0f : 0.0f;
  DrawCells(dl, s, grid, gap);
  DrawValues(dl, s, grid, gap);
  DrawMarks(dl, s, grid, gap);
  return HitTest(s, grid);
}

void DrawLegend(const ColorScale& scale, float width, double baseline, const char* baseline_label,
                const char* format) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  const float line = ImGui::GetTextLineHeight();
  const ImVec2 cursor = ImGui::GetCursorScreenPos();
  const ImVec2 p(cursor.x, cursor.y + 7);  // room for the baseline marker above the bar
  const float bar_h = 12;
  // The bar, in 64 steps (ImDrawList interpolates linearly between step colours).
  const int steps = 64;
  for (int i = 0; i < steps; ++i) {
    const float x0 = p.x + width * i / steps, x1 = p.x + width * (i + 1) / steps;
    const ImU32 c0 = scale.Map(scale.ValueAt(static_cast<double>(i) / steps));
    const ImU32 c1 = scale.Map(scale.ValueAt(static_cast<double>(i + 1) / steps));
    dl->AddRectFilledMultiColor(ImVec2(x0, p.y), ImVec2(x1, p.y + bar_h), c0, c1, c1, c0);
  }
  dl->AddRect(ImVec2(p.x, p.y), ImVec2(p.x + width, p.y + bar_h), text);
  // Ticks at both ends and the middle.
  char buf[64];
  for (double t : {0.0, 0.5, 1.0}) {
    std::snprintf(buf, sizeof(buf), format, scale.ValueAt(t));
    const float x = p.x + static_cast<float>(t) * width;
    const float tw = ImGui::CalcTextSize(buf).x;
    dl->AddLine(ImVec2(x, p.y + bar_h), ImVec2(x, p.y + bar_h + 3), text);
    dl->AddText(ImVec2(std::clamp(x - tw / 2, p.x, p.x + width - tw), p.y + bar_h + 3), text, buf);
  }
  float height = 7 + bar_h + 3 + line;
  if (!std::isnan(baseline)) {
    const double t = scale.Position(baseline);
    const float x = p.x + static_cast<float>(t) * width;
    // A black-and-white marker over the bar, and its label below the tick values.
    dl->AddTriangleFilled(ImVec2(x - 5, p.y - 6), ImVec2(x + 5, p.y - 6), ImVec2(x, p.y), text);
    dl->AddLine(ImVec2(x, p.y), ImVec2(x, p.y + bar_h), IM_COL32(0, 0, 0, 255), 3);
    dl->AddLine(ImVec2(x, p.y), ImVec2(x, p.y + bar_h), IM_COL32(255, 255, 255, 255), 1);
    std::snprintf(buf, sizeof(buf), format, baseline);
    const std::string label = std::string("\xe2\x96\xb2 ") + baseline_label + " = " + buf;
    const float tw = ImGui::CalcTextSize(label.c_str()).x;
    dl->AddText(ImVec2(std::clamp(x - tw / 2, p.x, p.x + width - tw), p.y + bar_h + 3 + line), text,
                label.c_str());
    height += line;
  }
  ImGui::Dummy(ImVec2(width, height + 2));
}

float LegendWidth(const HeatmapHit& hit) {
  return std::clamp(hit.grid_max.x - hit.grid_min.x, 200.0f, 420.0f);
}

void ClickExpert(Selection& sel, int layer, int expert) {
  if (ImGui::GetIO().KeyCtrl && sel.layer == layer)
    sel.ToggleExpert(expert);
  else
    sel.SelectExpert(layer, expert);
}

}  // namespace moe::studio
