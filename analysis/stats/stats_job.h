#pragma once
// `moescope stats`: routing statistics over traces, written to a folder (stats_export.h). The
// CLI and the desktop app call this; tests call the pieces (trace_scan.h, metrics.h).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/trace_scan.h"

namespace moe {

struct StatsRunOptions {
  std::vector<std::filesystem::path> traces;
  std::filesystem::path output;  // folder
  StatsOptions stats;
  bool progress = false;            // progress bar on stderr
  std::filesystem::path tokenizer;  // for token pieces in top_tokens.csv; default: the traced
                                    // model's tokenizer.model when it is still there
  // Sharded runs (analysis/distributed/mpi_stats.h): the document range and reductions of
  // TraceStatsRun, and whether this process writes the output folder.
  std::function<void(const TraceSetInfo&, TraceStatsRun&)> shard;
  bool write_output = true;
};

struct StatsSummary {
  std::string output;
  size_t traces = 0;
  int64_t documents = 0, tokens = 0, logit_rows = 0;
  double seconds = 0, tokens_per_second = 0;  // reading, accumulating, intervals and tests
  double total_seconds = 0;                   // including writing
  std::vector<std::string> notes;             // what is missing and why
  std::vector<TestFamily> families;           // the tests and their discoveries
};

StatsSummary RunStats(const StatsRunOptions& options);
std::string FormatStatsSummary(const StatsSummary& summary);

}  // namespace moe
