#pragma once
// Fills results_data.h from the exports of `moescope prune-curve`, `moescope cache-sim` and
// `moescope replay` with the library's readers (ReadPruneCurve, ReadCacheSimTable,
// ReadRouteAuditCsv): opened from File > Open results, given with --results, or found next to
// the opened trace. Copies and reshapes; computes nothing. No Qt, no ImGui.
#include <filesystem>
#include <string>
#include <vector>

#include "gui/model/results_data.h"

namespace moe::studio {

enum class ResultsKind { kPruneCurve, kCacheSim, kReplay };
const char* ResultsKindName(ResultsKind kind);  // "pruning curve", "cache simulation", ...

// Reads one export into its part of `into` (replacing what was there), by what the file is:
// a prune-curve results file (HDF5) or its `.vs-random.csv`, a cache-sim `cache.json` or the
// `cache.csv` beside it, a replay report CSV. Throws moe::Error naming the file and field.
ResultsKind LoadResultsFile(const std::filesystem::path& file, ResultsData& into);

// The exports in `dir` and its direct subfolders: a `<results>.vs-random.csv` beside its results
// file, a `cache.json`, a CSV with the replay report's header; the first of each kind by path.
// Returns the paths read. A file that looks like one of them but does not read adds its error
// (one line, naming the file) to `errors` and is skipped.
std::vector<std::filesystem::path> FindResults(const std::filesystem::path& dir, ResultsData& into,
                                               std::vector<std::string>& errors);

}  // namespace moe::studio
