#pragma once
// config.json of a split checkpoint, as upstream's save_pretrained writes it (and
// tests/reference/split_reference.py's moe_config_from_dense): every LlamaMoEConfig key with its
// default, the dense fields carried over, and the split's own settings.
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/split/expert_split.h"
#include "core/config.h"
#include "core/tensor.h"

namespace moe {

// `dense_json` is the dense checkpoint's config.json; `sizes` the experts' sizes (one layer).
nlohmann::json MoeConfigJson(const nlohmann::json& dense_json, const ModelConfig& dense,
                             const std::vector<int>& sizes, DType dtype,
                             const ExpertSplitOptions& options);

}  // namespace moe
