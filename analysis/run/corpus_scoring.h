#pragma once
// Next-token NLL of every document of a corpus, run exactly as a trace runs it (the same windows,
// the same length-sorted padded batches, the same scored tokens: run/next_token.h) but with no
// hook attached: `moescope score` over files, the Python module's `score`, and the baseline
// against which tracing overhead is measured (bench/bench_trace.cpp).
#include <cstdint>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/run/trace_windows.h"
#include "core/moe_model.h"
#include "core/routing_policy.h"

namespace moe {

struct DocumentScore {
  double total_nll = 0;   // sum over the document's predicted tokens
  int64_t predicted = 0;  // tokens with a next token in the document
  // With CorpusScoreOptions::token_nll: [n - 1], token_nll[i] = -log p(ids[i + 1] | ids[..i]).
  std::vector<float> token_nll;
  double mean_nll() const { return predicted ? total_nll / predicted : 0.0; }
};

struct CorpusScore {
  std::vector<DocumentScore> documents;  // in corpus order
  int64_t tokens = 0;  // document tokens run (each once, whatever the window overlap)
  double seconds = 0;
};

struct CorpusScoreOptions {
  WindowRule windows;                     // must be valid for the model (WindowRule::Validate)
  int batch_size = 8;                     // windows per forward pass
  const RoutingPolicy* policy = nullptr;  // interventions, or none
  bool token_nll = false;                 // keep every token's NLL (DocumentScore::token_nll)
};

CorpusScore ScoreCorpus(const MoeModel& model, const Corpus& corpus,
                        const CorpusScoreOptions& options);

}  // namespace moe
