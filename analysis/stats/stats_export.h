#pragma once
// Writes a StatsReport (metrics.h) to a folder: stats.h5 (arrays), and tidy CSV + JSON
// (one row per layer × expert × domain × metric), plus CSVs for the matrices, histograms and
// top tokens. Column and dataset names: docs/stats-format.md.
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/stats/metrics.h"

namespace moe {

inline constexpr const char* kStatsFormatName = "moescope-stats";
inline constexpr int kStatsFormatVersion = 2;

struct StatsExportMeta {
  std::vector<std::string> inputs;      // trace paths
  std::vector<std::string> incomplete;  // inputs read as their committed prefix
  std::vector<std::string> notes;       // e.g. why logit or vocabulary metrics are missing
  std::vector<std::string> pieces;      // token id -> SentencePiece piece, or empty
  double seconds = 0;
};

// Creates `dir` if needed and writes stats.h5, stats.csv, stats.json, coactivation.csv,
// transitions.csv, histograms.csv and (with vocabulary tables) top_tokens.csv.
void ExportStats(const std::filesystem::path& dir, const StatsReport& report,
                 const StatsExportMeta& meta);

void WriteStatsHdf5(const std::filesystem::path& file, const StatsReport& report,
                    const StatsExportMeta& meta);
void WriteStatsCsv(const std::filesystem::path& dir, const StatsReport& report,
                   const StatsExportMeta& meta);
void WriteStatsJson(const std::filesystem::path& file, const StatsReport& report,
                    const StatsExportMeta& meta);

}  // namespace moe
