#pragma once
// A small chart kit for the views that plot curves and bars (pruning curve, cache hit rates,
// replay agreement): a frame with axes, nice ticks and axis titles mapping data to screen,
// lines (solid or dashed), interval bands, error bars, markers, a legend row, a picker of the
// point nearest the mouse, and a combo of a file's domains. ImDrawList only.
#include <imgui.h>

#include <string>
#include <vector>

namespace moe::studio {

struct PlotFrame {
  ImVec2 min, max;                        // the plotting area (inside the axes)
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // data range shown
  ImVec2 At(double x, double y) const;
  bool Contains(ImVec2 p) const {
    return p.x >= min.x && p.x <= max.x && p.y >= min.y && p.y <= max.y;
  }
};

struct PlotAxes {
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  std::string x_label, y_label;
  const char* x_format = "%g";
  const char* y_format = "%g";
  std::vector<double> x_ticks;  // empty: nice ticks over the range
};

// Reserves a chart of `size` at the cursor (an item, so the window scrolls past it), draws the
// axes, grid and titles, and returns where data goes.
PlotFrame DrawPlotAxes(const PlotAxes& axes, ImVec2 size);

// The smallest and largest finite values of `values` widened by `pad` of their span (a span of
// 0 becomes 1); `lo`/`hi` start the range (e.g. 0 to include zero).
void WidenRange(const std::vector<double>& values, double& lo, double& hi);
void PadRange(double& lo, double& hi, double pad = 0.06);

// Points with NaN y break the line and the band.
void PlotLine(const PlotFrame& f, const std::vector<double>& x, const std::vector<double>& y,
              ImU32 color, float thickness = 2, bool dashed = false);
void PlotBand(const PlotFrame& f, const std::vector<double>& x, const std::vector<double>& low,
              const std::vector<double>& high, ImU32 color);
void PlotErrorBar(const PlotFrame& f, double x, double low, double high, ImU32 color,
                  float half_width = 4);
enum class MarkerShape { kCircle, kSquare, kDiamond, kRing };
void PlotMarker(const PlotFrame& f, double x, double y, ImU32 color, MarkerShape shape,
                float radius = 4);
void PlotHLine(const PlotFrame& f, double y, ImU32 color, bool dashed = true);
// A filled bar from y = base to y = value, `width` pixels wide centred on x.
void PlotBar(const PlotFrame& f, double x, double base, double value, float width, ImU32 color);

struct LegendEntry {
  std::string label;
  ImU32 color = 0;
  bool dashed = false;
  MarkerShape marker = MarkerShape::kCircle;
};
// One row of swatches and labels at the cursor, wrapping at the window's width.
void DrawLegend(const std::vector<LegendEntry>& entries);

// The point nearest the mouse within `radius` pixels, offered point by point.
struct NearestPoint {
  explicit NearestPoint(float radius = 12);
  void Offer(ImVec2 screen, int series, int index);
  bool found() const { return series >= 0; }
  int series = -1, index = -1;

 private:
  ImVec2 mouse_;
  float best_;
};

// Colour of series i (the saturated tab10 colours), and the grey of controls.
ImU32 SeriesColor(int i);
ImU32 ControlColor();
// `color` with alpha a (0..255).
ImU32 WithAlpha(ImU32 color, int a);

// "value [low, high]" with `format` for each, or just the value without an interval.
std::string FormatWithInterval(double value, double low, double high, const char* format);
// Bytes as B, KiB, MiB or GiB.
std::string FormatBytes(double bytes);

// A combo of "all documents" and `domains`; `row` is the chosen domain row (domains.size() =
// all). Returns whether it changed.
bool FileDomainCombo(const char* label, const std::vector<std::string>& domains, int& row,
                     float width = 180);

}  // namespace moe::studio
