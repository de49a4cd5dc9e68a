#pragma once
// The one next-token scoring path of moescope: which tokens of a batch of windows are scored, and
// their logits computed in bounded blocks. `score`, `trace` (BatchNll), `ablate` (full
// distributions for ΔNLL, KL and agreement), the Python module and the app all score through
// here, so they agree on which tokens are predicted: every token of a document after its first,
// each predicted from the window it is recorded in (run/trace_windows.h), so with windows that
// do not overlap the first token of a later window is predicted from the end of the one before.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/run/trace_windows.h"
#include "core/batch.h"
#include "core/moe_model.h"
#include "core/vocab_math.h"

namespace moe {

// One scored prediction: the hidden row that predicts `target`.
struct ScoredRow {
  int64_t batch_row = 0;  // row of the batch (b * S + s)
  int64_t doc = 0;        // document index in the corpus
  int64_t position = 0;   // position of the predicting token in its document
  int32_t target = 0;     // the document's next token
};

// Every recorded token [record_begin, end) of the batch's windows that has a next token in its
// document, in batch order. `members` are the windows of the batch (MakeWindowBatch).
std::vector<ScoredRow> ScoredRowsOf(const Batch& batch, std::span<const TraceWindow> windows,
                                    std::span<const size_t> members, const Corpus& corpus);

// Rows of [rows, V] logits computed at once: bounds the logits buffer (256 × 32k floats = 32 MiB).
constexpr int64_t kLogitBlockRows = 256;

// Calls consume(first, n, logits) for consecutive blocks of `rows`, logits [n, V] of the rows
// first..first+n-1, computed from `hidden` [B * S, H] through the LM head.
void ForEachLogitBlock(
    const MoeModel& model, const std::vector<float>& hidden, const std::vector<ScoredRow>& rows,
    const std::function<void(int64_t first, int64_t n, const float* logits)>& consume);

// Calls consume(first, n, stats) for consecutive blocks of `rows` with the LM head's statistics of
// rows first..first+n-1 (core/vocab_math.h: NLL of each row's target, argmax, log-sum-exp), the
// rows reduced in parallel. With `baseline`, stats carry KL(baseline row first + j || row j);
// with `keep` (sized to rows.size() rows), each row's logits are kept as its row there.
void ForEachScoredBlock(
    const MoeModel& model, const std::vector<float>& hidden, const std::vector<ScoredRow>& rows,
    const BaselineLogits* baseline, BaselineLogits* keep,
    const std::function<void(int64_t first, int64_t n, const LogitRowStats* stats)>& consume);

// What the LM head says at every row of a batch, [B * S], indexed like the batch.
struct NextTokenScores {
  std::vector<float> nll;          // -log p(target); NaN at rows that are not scored
  std::vector<int32_t> predicted;  // argmax of the logits (lowest id on ties); -1 where not scored
};

// Both from the same logits block (no second pass over the LM head); NaN / -1 everywhere when the
// model has no LM head.
NextTokenScores BatchNextToken(const MoeModel& model, const Batch& batch,
                               const std::vector<float>& hidden,
                               std::span<const TraceWindow> windows,
                               std::span<const size_t> members, const Corpus& corpus);

// -log p(target) of every scored row, at its batch row; NaN at rows that are not scored, and
// everywhere when the model has no LM head. [B * S], indexed like the batch.
std::vector<float> BatchNll(const MoeModel& model, const Batch& batch,
                            const std::vector<float>& hidden, std::span<const TraceWindow> windows,
                            std::span<const size_t> members, const Corpus& corpus);

}  // namespace moe
