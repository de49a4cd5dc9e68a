#pragma once
// The importance file of `moescope importance` (docs/pruning.md): JSON with every score as
// [layer][expert] arrays of value, ci_low and ci_high (null where there is no interval), and a
// tidy CSV beside it (layer, expert, score, value, ci_low, ci_high, routed). `moescope prune`
// reads the JSON back.
#include <filesystem>

#include "analysis/prune/expert_importance.h"

namespace moe {

// Writes `path` (JSON) and `path`.csv, each complete or not at all; neither replaces anything
// but a regular file.
void WriteImportance(const std::filesystem::path& path, const ExpertImportance& importance);

// Throws Error naming the file and field: not an importance file, shapes that disagree.
ExpertImportance ReadImportance(const std::filesystem::path& path);

// Per MoE layer: each expert's score with its interval, in a table for the terminal.
std::string FormatImportanceTable(const ExpertImportance& importance, ImportanceScore score);

}  // namespace moe
