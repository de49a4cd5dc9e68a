#include "gui/views/disable_mode_combo.h"

#include <imgui.h>

#include <algorithm>

namespace moe::studio {
namespace {

constexpr const char* kNames[kDisableModes] = {"reroute", "drop", "drop-renorm"};
constexpr const char* kHelp[kDisableModes] = {
    "the disabled experts are skipped and each token takes its next-best experts",
    "the disabled experts' outputs are dropped; the other weights stay as they were",
    "the disabled experts' outputs are dropped and the remaining weights renormalized"};

}  // namespace

DisableMode DisableModeAt(int mode) {
  constexpr DisableMode kModes[kDisableModes] = {DisableMode::kReroute, DisableMode::kDrop,
                                                 DisableMode::kDropRenormalize};
  return kModes[std::clamp(mode, 0, kDisableModes - 1)];
}

const char* DisableModeLabel(int mode) {
  return kNames[std::clamp(mode, 0, kDisableModes - 1)];
}

bool DisableModeCombo(const char* label, int* mode, float width) {
  const int before = *mode;
  ImGui::SetNextItemWidth(width);
  if (ImGui::BeginCombo(label, DisableModeLabel(*mode))) {
    for (int m = 0; m < kDisableModes; ++m) {
      if (ImGui::Selectable(kNames[m], m == *mode)) *mode = m;
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", kHelp[m]);
    }
    ImGui::EndCombo();
  }
  return *mode != before;
}

}  // namespace moe::studio
