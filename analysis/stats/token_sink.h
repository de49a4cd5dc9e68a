#pragma once
// What a pass over traces feeds: documents, token by token (trace_scan.h's ScanTraces). The
// routing accumulator is one; the token-controlled specialization pass another.
#include <cstdint>

namespace moe {

class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // `global_doc` numbers documents over the whole run; `domain` indexes the run's domains.
  virtual void BeginDocument(int64_t global_doc, int domain) = 0;
  // One token: ids and weights [L, kmax] (descending weight, -1 pads); logits [L, E] or null
  // when the token has none recorded; `predicted` the model's top-1 next token at this position
  // (the trace's /tokens/predicted), -1 when there is none (the last token of a document, or a
  // trace written before moescope recorded predictions). Every implementation declares the same
  // default, so calls through the base or a derived class agree.
  virtual void AddToken(int32_t token_id, const int16_t* ids, const float* weights, int kmax,
                        const float* logits, int32_t predicted = -1) = 0;
  virtual void EndDocument() = 0;
};

}  // namespace moe
