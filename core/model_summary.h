#pragma once
// One-line descriptions of a model description's parts, for `moescope info`, trace attributes and
// the app: the router recipe, the attention variant and which layers are dense. They are written
// for people to read, never parsed back (the typed fields of ModelConfig are the data).
#include <string>

#include "core/config.h"

namespace moe {

// e.g. "softmax over 8, top-2 of the scores, renormalized" or
// "sigmoid, top-4 of score + selection bias within the best 2 of 4 groups, renormalized, x 2.5".
std::string RouterRecipeText(const ModelConfig& c);
// e.g. "GQA 32/8, head dim 128, q/k RMSNorm per head, sliding window 4096".
std::string AttentionText(const ModelConfig& c);
// e.g. "all MoE" or "dense: 0, 1; MoE: the other 46".
std::string LayerKindsText(const ModelConfig& c);
// e.g. "1 of width 5632, sigmoid-gated" or "none".
std::string SharedExpertText(const ModelConfig& c);

}  // namespace moe
