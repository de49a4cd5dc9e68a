#pragma once
// `moescope replay`: reads the corpus (files or a trace's documents), then any of: writes the
// engine's own routes in the import format, audits imported routes against the engine, audits
// fp32 against bf16 routing; prints the reports and writes them to one tidy CSV
// (docs/route-replay.md).
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/replay/route_audit.h"
#include "analysis/replay/route_import.h"
#include "analysis/run/trace_header.h"
#include "core/model_loader.h"

namespace moe {

struct ReplayJob {
  TraceRunSettings run;                 // corpus files and filters (windows are ignored)
  std::filesystem::path trace;          // or: the documents of this trace
  RouteFiles routes;                    // routes.routes empty: no replay
  bool precision = false;               // the fp32 vs bf16 audit
  std::filesystem::path export_routes;  // write the engine's own routes here (.safetensors)
  std::filesystem::path output;         // the CSV of the audits (optional)
  AuditOptions audit;
};

struct ReplayResult {
  std::vector<RouteAudit> audits;  // replay first, then precision, as asked
  std::string report;              // the tables
};

// Throws Error naming the flag or file at fault; nothing asked is an Error.
ReplayResult RunReplayJob(const LoadedModel& model, const ReplayJob& job);

}  // namespace moe
