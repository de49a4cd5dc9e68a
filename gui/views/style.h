#pragma once
// Fonts and colours of moescope-studio's ImGui views, shared by the app, --export-views and the
// headless tests.
#include <imgui.h>

namespace moe::studio {

// Adds the UI font to io.Fonts: DejaVu Sans when installed (fonts-dejavu-core), else ImGui's
// built-in font; rasterized at font_size x pixel_ratio and drawn at font_size logical pixels
// (FontGlobalScale = 1 / pixel_ratio), so text stays sharp on HiDPI screens. Covers Latin,
// Greek, Cyrillic and the symbols the views draw. The caller builds the atlas (backend or
// GetTexDataAsRGBA32).
void SetupFonts(ImGuiIO& io, float font_size, float pixel_ratio);

// ImGui's dark or light colours with the studio's spacing.
void ApplyStyle(bool dark);

// Full-window views: one ImGui window covering the whole display, no title bar, no moving.
inline constexpr ImGuiWindowFlags kViewWindowFlags =
    ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize |
    ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoBringToFrontOnFocus;

}  // namespace moe::studio
