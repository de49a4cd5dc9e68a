#include "gui/views/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/views/colors.h"

namespace moe::studio {

namespace {

// Tick positions over [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `target` of them.
std::vector<double> NiceTicks(double lo, double hi, int target = 6) {
  std::vector<double> ticks;
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return ticks;
  const double raw = span / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * power) {
      step = m * power;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

void DashedLine(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 color, float thickness) {
  const float dx = b.x - a.x, dy = b.y - a.y;
  const float length = std::sqrt(dx * dx + dy * dy);
  if (length <= 0) return;
  constexpr float kDash = 7, kGap = 5;
  for (float s = 0; s < length; s += kDash + kGap) {
    const float e = std::min(length, s + kDash);
    dl->AddLine(ImVec2(a.x + dx * s / length, a.y + dy * s / length),
                ImVec2(a.x + dx * e / length, a.y + dy * e / length), color, thickness);
  }
}

void DrawMarker(ImDrawList* dl, ImVec2 c, ImU32 color, MarkerShape shape, float r) {
  switch (shape) {
    case MarkerShape::kCircle:
      dl->AddCircleFilled(c, r, color);
      break;
    case MarkerShape::kSquare:
      dl->AddRectFilled(ImVec2(c.x - r, c.y - r), ImVec2(c.x + r, c.y + r), color);
      break;
    case MarkerShape::kDiamond:
      dl->AddQuadFilled(ImVec2(c.x, c.y - r - 1), ImVec2(c.x + r + 1, c.y),
                        ImVec2(c.x, c.y + r + 1), ImVec2(c.x - r - 1, c.y), color);
      break;
    case MarkerShape::kRing:
      dl->AddCircle(c, r, color, 0, 2);
      break;
  }
}

}  // namespace

ImVec2 PlotFrame::At(double x, double y) const {
  const double tx = x1 > x0 ? (x - x0) / (x1 - x0) : 0.5;
  const double ty = y1 > y0 ? (y - y0) / (y1 - y0) : 0.5;
  return ImVec2(min.x + static_cast<float>(tx) * (max.x - min.x),
                max.y - static_cast<float>(ty) * (max.y - min.y));
}

PlotFrame DrawPlotAxes(const PlotAxes& a, ImVec2 size) {
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::Dummy(size);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  const ImU32 grid = ImGui::GetColorU32(ImGuiCol_Separator, 0.35f);
  const float line = ImGui::GetTextLineHeight();
  char buf[48];
  // Room for the y tick labels: the widest of them.
  const std::vector<double> y_ticks = NiceTicks(a.y0, a.y1);
  float label_w = 0;
  for (double t : y_ticks) {
    std::snprintf(buf, sizeof(buf), a.y_format, t);
    label_w = std::max(label_w, ImGui::CalcTextSize(buf).x);
  }
  PlotFrame f;
  f.x0 = a.x0, f.x1 = a.x1, f.y0 = a.y0, f.y1 = a.y1;
  f.min = ImVec2(p.x + label_w + 12, p.y + line * 1.6f);
  f.max = ImVec2(p.x + size.x - 12, p.y + size.y - line * 2.6f);
  if (f.max.x - f.min.x < 40 || f.max.y - f.min.y < 40) return f;
  for (double t : y_ticks) {
    const float y = f.At(a.x0, t).y;
    dl->AddLine(ImVec2(f.min.x, y), ImVec2(f.max.x, y), grid);
    std::snprintf(buf, sizeof(buf), a.y_format, t);
    const ImVec2 ts = ImGui::CalcTextSize(buf);
    dl->AddText(ImVec2(f.min.x - 6 - ts.x, y - ts.y / 2), text, buf);
  }
  const std::vector<double> x_ticks = a.x_ticks.empty() ? NiceTicks(a.x0, a.x1) : a.x_ticks;
  float last_right = -1e9f;
  for (double t : x_ticks) {
    if (t < a.x0 || t > a.x1) continue;
    const float x = f.At(t, a.y0).x;
    dl->AddLine(ImVec2(x, f.min.y), ImVec2(x, f.max.y), grid);
    std::snprintf(buf, sizeof(buf), a.x_format, t);
    const ImVec2 ts = ImGui::CalcTextSize(buf);
    if (x - ts.x / 2 < last_right + 6) continue;  // labels that would overlap are left out
    dl->AddText(ImVec2(x - ts.x / 2, f.max.y + 4), text, buf);
    last_right = x + ts.x / 2;
  }
  dl->AddRect(f.min, f.max, ImGui::GetColorU32(ImGuiCol_Border));
  const ImVec2 xs = ImGui::CalcTextSize(a.x_label.c_str());
  dl->AddText(ImVec2((f.min.x + f.max.x - xs.x) / 2, f.max.y + line + 8), text, a.x_label.c_str());
  // The y title sits above the axis (ImGui draws no rotated text).
  dl->AddText(ImVec2(p.x, p.y), text, a.y_label.c_str());
  return f;
}

void WidenRange(const std::vector<double>& values, double& lo, double& hi) {
  for (double v : values)
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
}

void PadRange(double& lo, double& hi, double pad) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo <= 0) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double span = hi - lo;
  lo -= span * pad;
  hi += span * pad;
}

void PlotLine(const PlotFrame& f, const std::vector<double>& x, const std::vector<double>& y,
              ImU32 color, float thickness, bool dashed) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->PushClipRect(f.min, f.max, true);
  for (size_t i = 1; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(y[i - 1]) || !std::isfinite(y[i])) continue;
    const ImVec2 a = f.At(x[i - 1], y[i - 1]), b = f.At(x[i], y[i]);
    if (dashed)
      DashedLine(dl, a, b, color, thickness);
    else
      dl->AddLine(a, b, color, thickness);
  }
  dl->PopClipRect();
}

void PlotBand(const PlotFrame& f, const std::vector<double>& x, const std::vector<double>& low,
              const std::vector<double>& high, ImU32 color) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->PushClipRect(f.min, f.max, true);
  for (size_t i = 1; i < x.size(); ++i) {
    if (!std::isfinite(low[i - 1]) || !std::isfinite(high[i - 1]) || !std::isfinite(low[i]) ||
        !std::isfinite(high[i]))
      continue;
    const ImVec2 quad[4] = {f.At(x[i - 1], low[i - 1]), f.At(x[i], low[i]), f.At(x[i], high[i]),
                            f.At(x[i - 1], high[i - 1])};
    dl->AddConvexPolyFilled(quad, 4, color);
  }
  dl->PopClipRect();
}

void PlotErrorBar(const PlotFrame& f, double x, double low, double high, ImU32 color,
                  float half_width) {
  if (!std::isfinite(low) || !std::isfinite(high)) return;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 a = f.At(x, low), b = f.At(x, high);
  dl->AddLine(a, b, color, 1.5f);
  dl->AddLine(ImVec2(a.x - half_width, a.y), ImVec2(a.x + half_width, a.y), color, 1.5f);
  dl->AddLine(ImVec2(b.x - half_width, b.y), ImVec2(b.x + half_width, b.y), color, 1.5f);
}

void PlotMarker(const PlotFrame& f, double x, double y, ImU32 color, MarkerShape shape, float r) {
  if (!std::isfinite(y)) return;
  DrawMarker(ImGui::GetWindowDrawList(), f.At(x, y), color, shape, r);
}

void PlotHLine(const PlotFrame& f, double y, ImU32 color, bool dashed) {
  if (!std::isfinite(y) || y < f.y0 || y > f.y1) return;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 a(f.min.x, f.At(f.x0, y).y), b(f.max.x, a.y);
  if (dashed)
    DashedLine(dl, a, b, color, 1);
  else
    dl->AddLine(a, b, color, 1);
}

void PlotBar(const PlotFrame& f, double x, double base, double value, float width, ImU32 color) {
  if (!std::isfinite(value)) return;
  const ImVec2 a = f.At(x, base), b = f.At(x, value);
  ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(a.x - width / 2, std::min(a.y, b.y)),
                                            ImVec2(a.x + width / 2, std::max(a.y, b.y)), color);
}

void DrawLegend(const std::vector<LegendEntry>& entries) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  const float line = ImGui::GetTextLineHeight();
  const float right = ImGui::GetCursorScreenPos().x + ImGui::GetContentRegionAvail().x;
  ImVec2 p = ImGui::GetCursorScreenPos();
  const float left = p.x;
  for (const LegendEntry& e : entries) {
    const float w = 34 + ImGui::CalcTextSize(e.label.c_str()).x + 18;
    if (p.x + w > right && p.x > left) {
      p.x = left;
      p.y += line + 4;
    }
    const float y = p.y + line / 2;
    if (e.dashed) {
      DashedLine(dl, ImVec2(p.x, y), ImVec2(p.x + 26, y), e.color, 2);
    } else {
      dl->AddLine(ImVec2(p.x, y), ImVec2(p.x + 26, y), e.color, 2.5f);
    }
    DrawMarker(dl, ImVec2(p.x + 13, y), e.color, e.marker, 4);
    dl->AddText(ImVec2(p.x + 32, p.y), text, e.label.c_str());
    p.x += w;
  }
  ImGui::Dummy(ImVec2(right - left, p.y + line + 4 - ImGui::GetCursorScreenPos().y));
}

NearestPoint::NearestPoint(float radius)
    : mouse_(ImGui::GetIO().MousePos), best_(radius * radius) {}

void NearestPoint::Offer(ImVec2 p, int s, int i) {
  const float dx = p.x - mouse_.x, dy = p.y - mouse_.y;
  const float d2 = dx * dx + dy * dy;
  if (d2 <= best_) {
    best_ = d2;
    series = s;
    index = i;
  }
}

ImU32 SeriesColor(int i) {
  return ExpertColor(i % 10, 20);
}

ImU32 ControlColor() {
  return IM_COL32(110, 110, 110, 255);
}

ImU32 WithAlpha(ImU32 color, int a) {
  return (color & ~IM_COL32_A_MASK) | (static_cast<ImU32>(a) << IM_COL32_A_SHIFT);
}

std::string FormatWithInterval(double value, double low, double high, const char* format) {
  char v[32], l[32], h[32];
  if (!std::isfinite(value)) return "n/a";
  std::snprintf(v, sizeof(v), format, value);
  if (!std::isfinite(low) || !std::isfinite(high)) return v;
  std::snprintf(l, sizeof(l), format, low);
  std::snprintf(h, sizeof(h), format, high);
  return std::string(v) + " [" + l + ", " + h + "]";
}

std::string FormatBytes(double bytes) {
  if (!std::isfinite(bytes)) return "n/a";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(bytes) >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

bool FileDomainCombo(const char* label, const std::vector<std::string>& domains, int& row,
                     float width) {
  const int M = static_cast<int>(domains.size());
  row = std::clamp(row, 0, M);
  ImGui::SetNextItemWidth(width);
  const std::string shown = row < M ? domains[static_cast<size_t>(row)] : "all documents";
  bool changed = false;
  if (ImGui::BeginCombo(label, shown.c_str())) {
    if (ImGui::Selectable("all documents", row == M)) row = M, changed = true;
    for (int m = 0; m < M; ++m)
      if (ImGui::Selectable(domains[static_cast<size_t>(m)].c_str(), row == m))
        row = m, changed = true;
    ImGui::EndCombo();
  }
  return changed;
}

}  // namespace moe::studio
