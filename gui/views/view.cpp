#include "gui/views/view.h"

#include "gui/views/ablation_view.h"
#include "gui/views/cache_curve_view.h"
#include "gui/views/coactivation_view.h"
#include "gui/views/load_view.h"
#include "gui/views/overview_view.h"
#include "gui/views/prompt_view.h"
#include "gui/views/prune_curve_view.h"
#include "gui/views/replay_view.h"
#include "gui/views/specialization_view.h"
#include "gui/views/style.h"
#include "gui/views/token_map_view.h"

namespace moe::studio {

void DrawViewWindow(View& view, const StudioData& data, Selection& selection, ImVec2 pos,
                    ImVec2 size) {
  ImGui::SetNextWindowPos(pos);
  ImGui::SetNextWindowSize(size);
  if (ImGui::Begin(view.Name(), nullptr, kViewWindowFlags)) view.Draw(data, selection);
  ImGui::End();
}

std::vector<std::unique_ptr<View>> MakeAllViews() {
  std::vector<std::unique_ptr<View>> v;
  v.push_back(std::make_unique<OverviewView>());
  v.push_back(std::make_unique<LoadView>());
  v.push_back(std::make_unique<SpecializationView>());
  v.push_back(std::make_unique<TokenMapView>());
  v.push_back(std::make_unique<CoactivationView>());
  v.push_back(std::make_unique<AblationView>());
  v.push_back(std::make_unique<PromptView>());
  v.push_back(std::make_unique<PruneCurveView>());
  v.push_back(std::make_unique<CacheCurveView>());
  v.push_back(std::make_unique<ReplayView>());
  return v;
}

void DrawNoTrace() {
  ImGui::TextDisabled("No trace is open.");
  ImGui::TextDisabled("File > Open trace... (Ctrl+O), or start moescope-studio TRACE.h5");
}

}  // namespace moe::studio
