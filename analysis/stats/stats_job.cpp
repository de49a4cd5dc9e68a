#include "analysis/stats/stats_job.h"

#include <chrono>
#include <cstdio>

#include "analysis/common/progress_bar.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/stats_export.h"
#include "analysis/stats/trace_scan.h"
#include "core/error.h"
#include "core/tokenizer.h"

namespace moe {
namespace {

std::vector<std::string> TokenPieces(const std::filesystem::path& file, int vocab) {
  std::vector<std::string> pieces;
  std::error_code ec;
  if (file.empty() || !std::filesystem::is_regular_file(file, ec)) return pieces;
  const std::unique_ptr<Tokenizer> tokenizer = OpenTokenizerFile(file);
  for (int i = 0; i < vocab && i < tokenizer->vocab_size(); ++i)
    pieces.push_back(tokenizer->Piece(i));
  return pieces;
}

}  // namespace

StatsSummary RunStats(const StatsRunOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const TraceSetInfo set = InspectTraces(o.traces);
  StatsSummary summary;
  summary.output = o.output.string();
  summary.traces = set.paths.size();
  summary.documents = set.documents;
  summary.tokens = set.tokens;
  summary.logit_rows = set.logit_rows;
  for (const std::string& path : set.incomplete)
    summary.notes.push_back(path + " is incomplete (complete = 0); its committed prefix was used");
  if (set.logit_rows == 0)
    summary.notes.push_back(
        "no router logits were recorded (trace --record-logits): router entropy, top-k mass, "
        "margin, z-loss and soft load are left out");
  if (o.stats.vocabulary && !set.vocabulary_note.empty())
    summary.notes.push_back("vocabulary specialization is left out: " + set.vocabulary_note);
  else if (o.stats.vocabulary && !set.predictions_note.empty())
    summary.notes.push_back("vocabulary specialization on predictions is left out: " +
                            set.predictions_note);

  std::string dense;
  for (int l = 0; l < set.shape.layers; ++l)
    if (!set.shape.Routes(l)) dense += (dense.empty() ? "" : ", ") + std::to_string(l);
  if (!dense.empty())
    summary.notes.push_back("layers " + dense +
                            " are dense (no router): routing statistics leave them out");
  const bool two_passes = o.stats.vocabulary && set.shape.vocab > 0;
  ProgressBar bar(o.progress, set.documents * (two_passes ? 2 : 1),
                  set.tokens * (two_passes ? 2 : 1));
  TraceStatsRun run;
  run.progress = [&](int64_t done, int64_t) { bar.Update(0, done); };
  if (o.shard) o.shard(set, run);
  const StatsReport report = ComputeStatsReport(set, o.stats, run);
  bar.Clear();
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  summary.tokens_per_second = summary.seconds > 0 ? set.tokens / summary.seconds : 0;
  summary.families = report.families;
  if (!report.has_vocabulary)
    summary.notes.push_back(
        "token-controlled domain specialization is left out: it needs the token id x expert "
        "tables");
  if (!o.write_output) return summary;
  StatsExportMeta meta;
  meta.inputs = set.paths;
  meta.incomplete = set.incomplete;
  meta.notes = summary.notes;
  std::filesystem::path tokenizer = o.tokenizer;
  if (tokenizer.empty() && !set.model_path.empty()) tokenizer = TokenizerFileOf(set.model_path);
  if (report.has_vocabulary) meta.pieces = TokenPieces(tokenizer, set.shape.vocab);
  ExportStats(o.output, report, meta);
  summary.total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

std::string FormatStatsSummary(const StatsSummary& s) {
  char timing[96];
  std::snprintf(timing, sizeof(timing),
                "%.1fs (%s tokens/s, with intervals and tests; %.1fs with output)", s.seconds,
                ShortCount(s.tokens_per_second).c_str(), s.total_seconds);
  std::string out = "stats over " + std::to_string(s.traces) + " trace" +
                    (s.traces == 1 ? "" : "s") + ", " + std::to_string(s.documents) +
                    " documents, " + ShortCount(static_cast<double>(s.tokens)) + " tokens in " +
                    timing + " -> " + s.output;
  for (const TestFamily& f : s.families) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "\ntest %s: %lld cells, %lld discoveries at FDR %g (Benjamini-Hochberg)",
                  MetricName(f.metric), static_cast<long long>(f.tests),
                  static_cast<long long>(f.discoveries), f.fdr);
    out += line;
    if (f.permutations > 0) {
      std::snprintf(line, sizeof(line), "; %d permutations, smallest p %.3g", f.permutations,
                    f.min_p);
      out += line;
    }
  }
  for (const std::string& n : s.notes) out += "\nnote: " + n;
  return out;
}

}  // namespace moe
