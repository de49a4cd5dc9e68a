#include "gui/views/style.h"

#include <filesystem>

namespace moe::studio {

void SetupFonts(ImGuiIO& io, float font_size, float pixel_ratio) {
  if (pixel_ratio <= 0) pixel_ratio = 1;
  io.Fonts->Clear();
  static ImVector<ImWchar> ranges;
  if (ranges.empty()) {
    ImFontGlyphRangesBuilder builder;
    builder.AddRanges(io.Fonts->GetGlyphRangesDefault());   // Basic Latin, Latin-1
    builder.AddRanges(io.Fonts->GetGlyphRangesCyrillic());
    static const ImWchar extra[] = {
        0x0100, 0x024F,  // Latin Extended-A and -B
        0x0370, 0x03FF,  // Greek
        0x2000, 0x206F,  // General Punctuation
        0x2190, 0x21FF,  // Arrows (the newline mark)
        0x2200, 0x22FF,  // Mathematical Operators
        0x2500, 0x259F,  // Box Drawing, Block Elements
        0x25A0, 0x25FF,  // Geometric Shapes
        0};
    builder.AddRanges(extra);
    builder.BuildRanges(&ranges);
  }
  const char* kDejaVu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  std::error_code ec;
  ImFont* font = nullptr;
  if (std::filesystem::is_regular_file(kDejaVu, ec)) {
    ImFontConfig config;
    config.OversampleH = 2;
    font = io.Fonts->AddFontFromFileTTF(kDejaVu, font_size * pixel_ratio, &config, ranges.Data);
  }
  if (font == nullptr) {
    ImFontConfig config;
    config.SizePixels = font_size * pixel_ratio;
    io.Fonts->AddFontDefault(&config);
  }
  io.FontGlobalScale = 1.0f / pixel_ratio;
}

void ApplyStyle(bool dark) {
  if (dark) ImGui::StyleColorsDark();
  else ImGui::StyleColorsLight();
  ImGuiStyle& s = ImGui::GetStyle();
  s.WindowRounding = 0;
  s.WindowBorderSize = 0;
  s.FrameRounding = 3;
  s.GrabRounding = 3;
  s.WindowPadding = ImVec2(8, 8);
  s.ItemSpacing = ImVec2(8, 5);
}

}  // namespace moe::studio
