#include "gui/views/colors.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace moe::studio {
namespace {

struct Rgb {
  float r, g, b;
};

ImU32 Pack(const Rgb& c) {
  auto byte = [](float v) { return static_cast<int>(std::lround(std::clamp(v, 0.f, 1.f) * 255)); };
  return IM_COL32(byte(c.r), byte(c.g), byte(c.b), 255);
}

template <size_t N>
ImU32 Lerp(const std::array<Rgb, N>& stops, double t) {
  if (std::isnan(t)) return kMissingColor;
  t = std::clamp(t, 0.0, 1.0) * (N - 1);
  const size_t i = std::min(static_cast<size_t>(t), N - 2);
  const float f = static_cast<float>(t - i);
  const Rgb& a = stops[i];
  const Rgb& b = stops[i + 1];
  return Pack({a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f});
}

// matplotlib's viridis at 0, 1/8, ..., 1.
constexpr std::array<Rgb, 9> kViridis = {{{0.267f, 0.005f, 0.329f},
                                          {0.283f, 0.141f, 0.458f},
                                          {0.254f, 0.265f, 0.530f},
                                          {0.207f, 0.372f, 0.553f},
                                          {0.164f, 0.471f, 0.558f},
                                          {0.128f, 0.567f, 0.551f},
                                          {0.135f, 0.659f, 0.518f},
                                          {0.478f, 0.821f, 0.318f},
                                          {0.993f, 0.906f, 0.144f}}};
// ColorBrewer RdBu, reversed (blue low, red high).
constexpr std::array<Rgb, 9> kDiverging = {{{0.129f, 0.400f, 0.675f},
                                            {0.263f, 0.576f, 0.765f},
                                            {0.573f, 0.773f, 0.871f},
                                            {0.820f, 0.898f, 0.941f},
                                            {0.969f, 0.969f, 0.969f},
                                            {0.992f, 0.859f, 0.780f},
                                            {0.957f, 0.647f, 0.510f},
                                            {0.839f, 0.376f, 0.302f},
                                            {0.698f, 0.094f, 0.169f}}};
// tab20: the saturated colours first, then their light partners.
constexpr std::array<ImU32, 20> kExperts = {
    IM_COL32(31, 119, 180, 255),  IM_COL32(255, 127, 14, 255),  IM_COL32(44, 160, 44, 255),
    IM_COL32(214, 39, 40, 255),   IM_COL32(148, 103, 189, 255), IM_COL32(140, 86, 75, 255),
    IM_COL32(227, 119, 194, 255), IM_COL32(127, 127, 127, 255), IM_COL32(188, 189, 34, 255),
    IM_COL32(23, 190, 207, 255),  IM_COL32(174, 199, 232, 255), IM_COL32(255, 187, 120, 255),
    IM_COL32(152, 223, 138, 255), IM_COL32(255, 152, 150, 255), IM_COL32(197, 176, 213, 255),
    IM_COL32(196, 156, 148, 255), IM_COL32(247, 182, 210, 255), IM_COL32(199, 199, 199, 255),
    IM_COL32(219, 219, 141, 255), IM_COL32(158, 218, 229, 255)};

}  // namespace

ImU32 Viridis(double t) { return Lerp(kViridis, t); }
ImU32 Diverging(double t) { return Lerp(kDiverging, t); }

double ColorScale::Position(double v) const {
  if (std::isnan(v)) return v;
  if (kind == Kind::kSequential) {
    if (!(max > min)) return 0.5;
    return std::clamp((v - min) / (max - min), 0.0, 1.0);
  }
  if (log_ratio) {
    if (v <= 0 || center <= 0) return 0.0;
    const double hi = max > center ? std::log2(max / center) : 0.0;
    const double lo = min > 0 && min < center ? std::log2(center / min) : hi;
    const double r = std::max({hi, lo, 1e-9});
    return std::clamp(0.5 + 0.5 * std::log2(v / center) / r, 0.0, 1.0);
  }
  if (!symmetric) {  // two slopes; beyond an empty half is beyond the range
    if (v < center)
      return min < center ? std::clamp(0.5 * (v - min) / (center - min), 0.0, 0.5) : 0.0;
    if (v > center)
      return max > center ? std::clamp(0.5 + 0.5 * (v - center) / (max - center), 0.5, 1.0) : 1.0;
    return 0.5;
  }
  const double r = std::max({max - center, center - min, 1e-12});
  return std::clamp(0.5 + 0.5 * (v - center) / r, 0.0, 1.0);
}

double ColorScale::ValueAt(double t) const {
  if (kind == Kind::kSequential) return min + t * (max - min);
  if (log_ratio) {
    const double hi = max > center ? std::log2(max / center) : 0.0;
    const double lo = min > 0 && min < center ? std::log2(center / min) : hi;
    const double r = std::max({hi, lo, 1e-9});
    return center * std::exp2((t - 0.5) * 2 * r);
  }
  if (!symmetric)
    return t < 0.5 ? min + (center - min) * t * 2 : center + (max - center) * (t - 0.5) * 2;
  const double r = std::max({max - center, center - min, 1e-12});
  return center + (t - 0.5) * 2 * r;
}

ImU32 ColorScale::Map(double v) const {
  if (std::isnan(v)) return kMissingColor;
  const double t = Position(v);
  return kind == Kind::kSequential ? Viridis(t) : Diverging(t);
}

ImU32 ExpertColor(int expert, int experts) {
  if (expert < 0) return kMissingColor;
  if (experts <= static_cast<int>(kExperts.size())) return kExperts[static_cast<size_t>(expert)];
  float r, g, b;
  const float hue = std::fmod(expert * 0.381966f, 1.0f);  // golden-angle steps
  const float value = (expert / 7) % 2 == 0 ? 0.85f : 0.65f;
  ImGui::ColorConvertHSVtoRGB(hue, 0.6f, value, r, g, b);
  return ImGui::ColorConvertFloat4ToU32(ImVec4(r, g, b, 1.0f));
}

ImU32 ContrastText(ImU32 bg) {
  const float r = ((bg >> IM_COL32_R_SHIFT) & 0xFF) / 255.f;
  const float g = ((bg >> IM_COL32_G_SHIFT) & 0xFF) / 255.f;
  const float b = ((bg >> IM_COL32_B_SHIFT) & 0xFF) / 255.f;
  const float luminance = 0.2126f * r + 0.7152f * g + 0.0722f * b;
  return luminance > 0.5f ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255);
}

}  // namespace moe::studio
