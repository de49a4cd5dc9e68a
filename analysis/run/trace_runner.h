#pragma once
// `moescope trace`: runs a model over a corpus and writes the routing trace
// (docs/trace-format.md). Documents are cut into windows (trace_windows.h), windows are
// batched with right padding, routing comes from a RoutingRecorder hook, per-token NLL from the
// LM head, and whole documents go to a TraceWriter thread. Padding never reaches the trace.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "analysis/run/trace_header.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"

namespace moe {

struct TraceOptions {
  std::filesystem::path output;
  TraceRunSettings run;   // corpus files, domains, windows (0 = the context length), logits
  int batch_size = 8;     // windows per forward pass
  bool resume = false;    // continue an interrupted trace at `output`
  bool progress = false;  // draw a progress bar on stderr
  size_t queue_chunks = 4;
  // A chunk of finished documents is committed (written and flushed, visible to readers, safe
  // from a crash) once it holds this many tokens or this much time has passed.
  int64_t commit_tokens = 8192;
  double commit_seconds = 2.0;
  // Called on the running thread after each group of batches with the corpus tokens run so far
  // (those of a resumed prefix included) and in all (for a GUI's progress bar).
  std::function<void(int64_t tokens_done, int64_t tokens_total)> on_progress;
  // When set, the run stops after the current group of batches: finished documents are
  // committed, the trace is closed with complete = 0 (`resume` continues it) and the summary
  // says interrupted.
  const std::atomic<bool>* stop = nullptr;
  // A sharded run (analysis/distributed/): called once the corpus is read and the run's header
  // made (`whole` describes the run over the whole corpus), before the output is touched; returns
  // the documents [first, second) of the corpus that this process traces. `output` then holds
  // those alone, as a trace of its own whose corpus attributes describe them; the model's random
  // draws, forced routes and the router-logit sample still see each document's index in the
  // whole corpus, so the shards of a run hold exactly the rows of a single-process trace.
  // Throwing stops the run before anything is written.
  std::function<std::pair<int64_t, int64_t>(const Corpus& corpus, const TraceHeader& whole)>
      select_documents;
};

struct TraceSummary {
  std::string output;
  int64_t documents = 0, tokens = 0;                  // in the finished trace
  int64_t resumed_documents = 0, resumed_tokens = 0;  // already there when resuming
  int64_t skipped_documents = 0;                      // blank or empty documents left out
  int64_t logit_rows = 0;  // sampled router-logit rows written by this run
  double seconds = 0;
  double tokens_per_second = 0;   // tokens traced by this run / seconds
  bool already_complete = false;  // --resume found nothing left to do
  bool interrupted = false;       // options.stop ended the run; the trace is incomplete
};

// Throws Error naming the file, line or flag for bad input, and the trace for resume mismatches.
TraceSummary RunTrace(const LoadedModel& model, const RoutingPolicy& policy,
                      const TraceOptions& options);

// One line: "traced 120 documents, 45.1k tokens in 3s (14.1k tokens/s) -> out.h5".
std::string FormatSummary(const TraceSummary& summary);

}  // namespace moe
