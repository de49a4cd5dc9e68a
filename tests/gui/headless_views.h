#pragma once
// Views drawn without a window: an ImGui context with the studio's fonts and style and no
// renderer, whose frames are built and their draw lists inspected (the view tests) or timed
// (bench/bench_gui_frames.cpp); and hand-made StudioData with known values for both.
#include <imgui.h>

#include <memory>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"
#include "gui/views/view.h"

namespace moe::studio {

// An ImGui context with the studio's fonts and style, a display of `size`, and no renderer:
// frames are built and their draw lists inspected.
class Headless {
 public:
  explicit Headless(ImVec2 size = ImVec2(1280, 800));
  ~Headless();
  // One frame of `view` covering the display. The mouse is at `mouse` (off-screen by default)
  // with the left button `down`.
  void Frame(View& view, const StudioData& data, Selection& selection,
             ImVec2 mouse = ImVec2(-1e6f, -1e6f), bool down = false, bool ctrl = false);
  ImVec2 size() const { return size_; }

 private:
  ImGuiContext* context_;
  ImVec2 size_;
};

// Hand-made data: M domains, L layers, E experts; relative_load value of (domain row r, layer l,
// expert e) = 0.25 + 0.5 * ((r + l + e) % 4), baseline 1; the lift metrics the same pattern.
StudioData MakeData(int M, int L, int E);
// A document of T tokens "t0", "t1", ...; top-1 expert at layer l = (t + l) % E, second choice
// (t + l + 1) % E; weights 0.7/0.3; nll[t] = t % 5.
std::shared_ptr<DocumentRouting> MakeDocument(int64_t index, int64_t T, int L, int E);

}  // namespace moe::studio
