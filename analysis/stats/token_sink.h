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
  // when the token has none recorded.
  virtual void AddToken(int32_t token_id, const int16_t* ids, const float* weights, int kmax,
                        const float* logits) = 0;
  virtual void EndDocument() = 0;
};

}  // namespace moe
