#include "core/heads.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/linear.h"
#include "core/ops.h"

namespace moe {

void LmLogits(const MoeModel& model, const float* hidden, int64_t rows, float* out) {
  const Matrix& head = model.weights().lm_head;
  if (head.empty()) Fail("lm_head", "this checkpoint has no language-model head");
  MatMulTransposed(hidden, rows, head, out);
  const float scaling = model.config().logits_scaling;  // 1 except in Granite
  if (scaling != 1.0f)
    for (int64_t i = 0; i < rows * head.rows; ++i) out[i] /= scaling;
}

std::vector<float> LmLogits(const MoeModel& model, const float* hidden, int64_t rows) {
  std::vector<float> logits(static_cast<size_t>(rows * model.config().vocab_size));
  LmLogits(model, hidden, rows, logits.data());
  return logits;
}

SequenceClassification ClassifySequences(const MoeModel& model, const Batch& batch,
                                         const std::vector<float>& hidden) {
  const ModelConfig& c = model.config();
  const Matrix& score = model.weights().score;
  if (score.empty()) Fail("score.weight", "this checkpoint has no sequence-classification head");
  if (!c.has_pad_token && batch.batch_size != 1)
    Fail("config.json", "pad_token_id is null, so only a batch of one sequence can be pooled");
  SequenceClassification out;
  out.logits.resize(static_cast<size_t>(batch.batch_size * score.rows));
  const int64_t S = batch.seq_len, H = c.hidden_size;
  for (int64_t b = 0; b < batch.batch_size; ++b) {
    int64_t first_pad = 0;  // argmax of (ids == pad): 0 when there is no pad
    if (c.has_pad_token) {
      for (int64_t s = 0; s < S; ++s) {
        if (batch.ids[b * S + s] == c.pad_token_id) {
          first_pad = s;
          break;
        }
      }
    }
    const int64_t idx = ((first_pad - 1) % S + S) % S;
    out.pooled_index.push_back(static_cast<int32_t>(idx));
    MatMulTransposed(hidden.data() + (b * S + idx) * H, 1, score,
                     out.logits.data() + b * score.rows);
  }
  return out;
}

QuestionAnswering AnswerLogits(const MoeModel& model, const Batch& batch,
                               const std::vector<float>& hidden) {
  const ModelWeights& w = model.weights();
  if (w.qa_outputs.empty()) Fail("qa_outputs.weight", "this checkpoint has no QA head");
  const int64_t T = batch.tokens();
  std::vector<float> both(static_cast<size_t>(T * 2));  // [T, 2]
  MatMulTransposed(hidden.data(), T, w.qa_outputs, both.data());
  AddBias(both.data(), T, w.qa_bias);
  QuestionAnswering out;
  for (int64_t t = 0; t < T; ++t) {
    out.start_logits.push_back(both[t * 2]);
    out.end_logits.push_back(both[t * 2 + 1]);
  }
  return out;
}

AnswerSpan BestSpan(const float* start_logits, const float* end_logits, int64_t first, int64_t last,
                    int64_t max_length) {
  AnswerSpan best{first, first, -std::numeric_limits<float>::infinity()};
  for (int64_t s = first; s <= last; ++s) {
    for (int64_t e = s; e <= last && e < s + max_length; ++e) {
      const float score = start_logits[s] + end_logits[e];
      if (score > best.score) best = {s, e, score};
    }
  }
  return best;
}

}  // namespace moe
