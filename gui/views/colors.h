#pragma once
// Colour scales of the views: a sequential scale (viridis) for magnitudes, a diverging scale
// (blue - white - red) centred on a baseline for ratios such as relative load and lift, and a
// categorical palette that gives every expert its own colour. Presentation only.
#include <imgui.h>

namespace moe::studio {

// Maps a value to a colour. Sequential: min..max linearly onto viridis. Diverging: white at
// `center`; with `log_ratio`, positions follow log2(value / center) over a range symmetric
// around the center, so 2x and 0.5x sit equally far from white. Diverging and not `symmetric`
// (linear only): min..center onto the blue half and center..max onto the red half, each
// linearly (matplotlib's TwoSlopeNorm), so the ends of the legend are min and max.
struct ColorScale {
  enum class Kind { kSequential, kDiverging };
  Kind kind = Kind::kSequential;
  double min = 0, max = 1;
  double center = 0;  // diverging only
  bool log_ratio = false;
  bool symmetric = true;  // diverging without log_ratio: false = two slopes

  // [0, 1] position of `value` along the legend (clamped); NaN stays NaN.
  double Position(double value) const;
  // The value at legend position t in [0, 1] (inverse of Position inside the range).
  double ValueAt(double t) const;
  ImU32 Map(double value) const;  // NaN -> kMissingColor
};

inline constexpr ImU32 kMissingColor = IM_COL32(128, 128, 128, 255);

ImU32 Viridis(double t);    // t in [0, 1]
ImU32 Diverging(double t);  // t in [0, 1], white at 0.5
// Colour of expert e of E: a 20-colour palette (tab20 order: the 10 saturated, then the 10
// light ones), golden-angle hues beyond 20.
ImU32 ExpertColor(int expert, int experts);
// Black or white, whichever reads better on `background`.
ImU32 ContrastText(ImU32 background);

}  // namespace moe::studio
