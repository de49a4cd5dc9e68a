#pragma once
// Task heads on top of the body's final hidden states (docs/llama-moe-spec.md §2.8-2.9).
#include <cstdint>
#include <vector>

#include "core/batch.h"
#include "core/moe_model.h"

namespace moe {

// lm_head: logits [rows, V] of hidden [rows, H].
std::vector<float> LmLogits(const MoeModel& model, const float* hidden, int64_t rows);
// The same into out[rows, vocab], for callers that reuse one buffer (a fresh [512, 32000]
// vector is 64 MiB to page-fault in and zero).
void LmLogits(const MoeModel& model, const float* hidden, int64_t rows, float* out);

struct SequenceClassification {
  std::vector<int32_t> pooled_index;  // [B] the position each row was read at
  std::vector<float> logits;          // [B, num_labels]
};
// score head pooled at the token before the first pad (upstream HF port: (argmax(ids == pad)
// - 1) mod S, i.e. the last token when there is no pad).
SequenceClassification ClassifySequences(const MoeModel& model, const Batch& batch,
                                         const std::vector<float>& hidden);

struct QuestionAnswering {
  std::vector<float> start_logits;  // [B, S]
  std::vector<float> end_logits;    // [B, S]
};
QuestionAnswering AnswerLogits(const MoeModel& model, const Batch& batch,
                               const std::vector<float>& hidden);

struct AnswerSpan {
  int64_t start = 0, end = 0;  // inclusive token positions
  float score = 0;             // start_logit + end_logit
};
// Best span with first <= start <= end < first + max_length, within [first, last].
AnswerSpan BestSpan(const float* start_logits, const float* end_logits, int64_t first, int64_t last,
                    int64_t max_length);

}  // namespace moe
