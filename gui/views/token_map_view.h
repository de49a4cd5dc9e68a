#pragma once
// Token routing map: the text of one document, each token on a box coloured by its first
// (highest-weight) expert at the selected layer; an underline whose strength is the token's
// surprisal (-log p of this token given the ones before it, from the trace's NLL); hovering a
// token lists its top-k experts and weights at every layer. Only visible lines are drawn
// (ImGuiListClipper), so documents of 100k tokens scroll smoothly. Clicking a token selects it,
// Shift+click extends the token range; selected experts dim tokens not routed to them.
#include <cstdint>
#include <string>
#include <vector>

#include "gui/views/view.h"

namespace moe::studio {

class TokenMapView : public View {
 public:
  const char* Name() const override { return "token_map"; }
  const char* Title() const override { return "Token routing map"; }
  void Draw(const StudioData& data, Selection& selection) override;
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  // What the last frame drew, for tests and benchmarks.
  struct FrameStats {
    int64_t lines = 0;         // lines of the whole laid-out document
    int64_t first_token = -1;  // first token drawn
    int64_t drawn_tokens = 0;  // token boxes drawn (visible ones only)
    int64_t hovered_token = -1;
  };
  const FrameStats& last_frame() const { return stats_; }
  // Screen rectangle of token t's box in the last frame (if it was drawn).
  bool TokenRect(int64_t t, ImVec2* min, ImVec2* max) const;
  // Scrolls so that token t is visible in the next frame.
  void ScrollToToken(int64_t t) { scroll_to_ = t; }

 private:
  struct Layout {
    const DocumentRouting* doc = nullptr;
    float wrap_width = 0, font_size = 0;
    std::vector<std::string> shown;   // [T] text as drawn (newline -> U+21B5)
    std::vector<float> x, width;      // [T] box position within its line, box width
    std::vector<int64_t> line_start;  // [lines + 1] first token of each line
  };
  void BuildLayout(const DocumentRouting& doc, float wrap_width);
  void DrawHeader(const StudioData& data, Selection& sel);
  void DrawTokenTooltip(const StudioData& data, const DocumentRouting& doc, int64_t t) const;
  // The laid-out document's visible lines (in the "tokens" child window); returns the token
  // under the mouse, or -1.
  int64_t DrawTokens(const StudioData& data, const DocumentRouting& doc, const Selection& sel,
                     int layer, double full);
  int64_t LineOf(int64_t t) const;

  Layout layout_;
  FrameStats stats_;
  std::vector<std::pair<int64_t, std::pair<ImVec2, ImVec2>>> drawn_;  // token -> box, last frame
  int64_t scroll_to_ = -1;
};

}  // namespace moe::studio
