#pragma once
// Routing statistics over one or many traces (shards of one run, or traces of one model over
// several corpora), read in blocks of token rows so memory is bounded by the shape of the
// statistics, not by the size of the traces. Documents are numbered globally in the order the
// traces are given, so shards given in order reproduce the statistics of the whole trace
// (exactly for counts, and the same bootstrap and permutation draws).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/token_sink.h"

namespace moe {

class TokenControlledPass;

struct TraceSetInfo {
  std::vector<std::string> paths;
  std::vector<std::string> domains;  // union of the traces' domains, in order of appearance
  StatsShape shape;                  // top_k: the largest of the traces'
  std::vector<int16_t> doc_domains;  // [D] global domain index of every document
  int64_t documents = 0, tokens = 0, logit_rows = 0;
  // Per trace, the committed documents and tokens seen here. A trace still being written grows
  // between InspectTraces and AccumulateTraces; the statistics cover this prefix only, so they
  // match doc_domains and the counts above (a consistent snapshot of a growing trace).
  std::vector<int64_t> trace_documents, trace_tokens;
  std::vector<std::string> incomplete;  // traces with complete = 0 (their committed prefix counts)
  std::string vocabulary_note;          // why vocabulary tables are off, or ""
  // Whether every trace records the model's top-1 predictions (/tokens/predicted, absent from
  // traces of older moescope versions); when not, why, for the note that vocabulary
  // specialization on predictions is left out.
  bool predictions = true;
  std::string predictions_note;
  std::string model_path;  // of the first trace
};

// Reads the headers and document tables. Throws Error naming the file and attribute when the
// traces do not describe one model (num_layers, num_experts, checkpoint_sha256 differ).
// `max_vocab_bytes` caps the token id × expert tables (three of L × V × E uint32: input, next
// and predicted tokens; two when a trace records no predictions).
TraceSetInfo InspectTraces(const std::vector<std::filesystem::path>& paths,
                           size_t max_vocab_bytes = size_t{2} << 30);

struct TraceStatsRun {
  // Called after each block with (tokens done, tokens in all traces).
  std::function<void(int64_t, int64_t)> progress;
  int64_t block_bytes = 16 << 20;  // size of the token rows read at once
  // Sharded runs (analysis/distributed/): only documents [first_document, end_document) of the
  // global numbering are fed (end_document < 0: to the end), and ComputeStatsReport calls
  // `reduce_first` on the accumulator after the first pass and `reduce_second` on the
  // token-controlled pass after the second; each must leave every process holding the sums over
  // all of them.
  int64_t first_document = 0, end_document = -1;
  std::function<void(RoutingAccumulator&)> reduce_first;
  std::function<void(TokenControlledPass&)> reduce_second;
};

// Feeds every token of every trace's prefix seen by InspectTraces to `sink`, documents numbered
// globally in the order of the traces.
void ScanTraces(const TraceSetInfo& info, TokenSink& sink, const TraceStatsRun& run = {});

// Feeds every token of every trace's prefix seen by InspectTraces to a new accumulator.
RoutingAccumulator AccumulateTraces(const TraceSetInfo& info, const StatsOptions& options,
                                    const TraceStatsRun& run = {});

// The whole statistics of `info`: the accumulating pass, and with vocabulary tables a second
// pass for token-controlled specialization (token_controlled.h); `run.progress` sees both
// passes as one (tokens done out of twice the tokens when there are two).
StatsReport ComputeStatsReport(const TraceSetInfo& info, const StatsOptions& options,
                               const TraceStatsRun& run = {});

}  // namespace moe
