#pragma once
// The semantics of disabled experts (core DisableMode: reroute, drop, drop-renorm) as a combo,
// with what each one does in its tooltip: the ablation panel and the live prompt offer the same.
#include "core/routing_policy.h"

namespace moe::studio {

inline constexpr int kDisableModes = 3;
// Mode m of the combo (0 reroute, 1 drop, 2 drop-renorm) and its DisableModeName spelling.
DisableMode DisableModeAt(int mode);
const char* DisableModeLabel(int mode);
// A combo choosing *mode; returns whether the choice changed.
bool DisableModeCombo(const char* label, int* mode, float width = 140);

}  // namespace moe::studio
