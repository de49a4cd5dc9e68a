#pragma once
// Next-token NLL of every document of a corpus, run exactly as a trace runs it (the same windows,
// the same length-sorted padded batches) but with no hook attached: `moescope score` over files,
// and the baseline against which tracing overhead is measured (bench/bench_trace.cpp).
#include <cstdint>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/run/trace_windows.h"
#include "core/llama_moe_model.h"
#include "core/routing_policy.h"

namespace moe {

struct DocumentScore {
  double total_nll = 0;   // sum over the document's predicted tokens
  int64_t predicted = 0;  // tokens with a next token in the document
  double mean_nll() const { return predicted ? total_nll / predicted : 0.0; }
};

struct CorpusScore {
  std::vector<DocumentScore> documents;  // in corpus order
  int64_t tokens = 0;  // document tokens run (each once, whatever the window overlap)
  double seconds = 0;
};

// `rule` must be valid for the model's context (WindowRule::Validate); `policy` may be null.
CorpusScore ScoreCorpus(const LlamaMoeModel& model, const Corpus& corpus, const WindowRule& rule,
                        int batch_size, const RoutingPolicy* policy = nullptr);

}  // namespace moe
