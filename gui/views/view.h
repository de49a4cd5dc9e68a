#pragma once
// A moescope-studio view (ImHex's View, tracy's Draw* panels): draws one panel of immutable
// StudioData with ImGui into the current window, may change the shared Selection, and writes
// the data it shows as CSV. Views keep only presentation state (chosen metric, scroll, layout
// caches); every number comes from StudioData.
#include <imgui.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"

namespace moe::studio {

class View {
 public:
  virtual ~View() = default;
  // File stem and id: "overview", "expert_load", ...
  virtual const char* Name() const = 0;
  // Window and dock title.
  virtual const char* Title() const = 0;
  // Draws into the current ImGui window (begun by the caller, e.g. DrawViewWindow).
  virtual void Draw(const StudioData& data, Selection& selection) = 0;
  // The data behind what Draw shows for `selection`, as CSV with a header row.
  virtual void WriteCsv(const StudioData& data, const Selection& selection,
                        std::ostream& out) const = 0;
  // Whether the view has anything to show for `data`; export (--export-views, File > Export
  // views) leaves out the views that do not. The trace views always do.
  virtual bool HasData(const StudioData& /*data*/) const { return true; }
  // Further tables a view shows that do not fit WriteCsv's columns, exported as
  // <view>_<table>.csv beside <view>.csv; none by default.
  virtual std::vector<std::string> ExtraCsvTables() const { return {}; }
  virtual void WriteExtraCsv(const std::string& /*table*/, const StudioData& /*data*/,
                             const Selection& /*selection*/, std::ostream& /*out*/) const {}
};

// Begins a window covering [pos, pos + size) with kViewWindowFlags, draws the view, ends it.
void DrawViewWindow(View& view, const StudioData& data, Selection& selection, ImVec2 pos,
                    ImVec2 size);

// Every view, in the order the app docks and exports them: overview, expert_load,
// specialization, token_map, coactivation, ablation, prompt, prune_curve, cache_curves, replay.
std::vector<std::unique_ptr<View>> MakeAllViews();

// Shown by views when no trace is open.
void DrawNoTrace();

}  // namespace moe::studio
