#pragma once
// Collects the recorded token rows of documents as their windows finish (a document's windows
// may span several batches), and hands them to the writer as TraceChunks holding whole
// documents only, with the running per-domain statistics.
#include <cstdint>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_file.h"

namespace moe {

class TraceChunkBuilder {
 public:
  // `stats` holds what earlier runs committed (resume); `first_token_row` is the trace row the
  // next token gets.
  TraceChunkBuilder(const Corpus& corpus, int layers, int kmax, int experts, ExpertStats stats,
                    int64_t first_token_row);

  // Appends one token of document `doc`, which is the open document or the next one. `predicted`
  // is the model's top-1 next token (-1: none). Routing rows are [L, kmax]; logits, when not
  // null, [L, E] (the token is in the logit sample); shared_gate, when not null, [L].
  void AddToken(int64_t doc, int32_t id, int32_t position, float nll, int32_t predicted,
                const int16_t* topk_ids, const float* topk_weights, const float* logits,
                const float* shared_gate = nullptr);
  // Document `doc` (the open one) has all its tokens.
  void EndDocument(int64_t doc);

  bool has_finished_documents() const { return !finished_tokens_.empty(); }
  // The finished documents since the last Take, as one chunk; tokens of an unfinished
  // document stay for the next chunk. Statistics are updated with the chunk's tokens.
  TraceChunk Take();

  const ExpertStats& stats() const { return stats_; }
  int kmax() const { return kmax_; }
  size_t routing_width() const { return static_cast<size_t>(layers_) * kmax_; }   // L * kmax
  size_t logit_width() const { return static_cast<size_t>(layers_) * experts_; }  // L * E

 private:
  const Corpus& corpus_;
  int layers_, kmax_, experts_;
  ExpertStats stats_;
  int64_t next_row_;         // trace row of the next token
  int64_t open_doc_ = -1;    // document receiving tokens, -1 before the first
  int64_t open_tokens_ = 0;  // its tokens so far
  std::vector<int64_t> finished_docs_, finished_tokens_;
  TraceChunk pending_;  // token and logit rows not yet taken
};

}  // namespace moe
