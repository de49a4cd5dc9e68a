#include "analysis/run/next_token.h"

#include <algorithm>
#include <cmath>

#include "core/heads.h"
#include "core/scratch_buffer.h"

namespace moe {

std::vector<ScoredRow> ScoredRowsOf(const Batch& batch, std::span<const TraceWindow> windows,
                                    std::span<const size_t> members, const Corpus& corpus) {
  std::vector<ScoredRow> rows;
  for (size_t b = 0; b < members.size(); ++b) {
    const TraceWindow& w = windows[members[b]];
    const std::vector<int32_t>& ids = corpus.documents[static_cast<size_t>(w.doc)].ids;
    for (int64_t i = w.record_begin; i < w.end; ++i) {
      if (i + 1 >= static_cast<int64_t>(ids.size())) continue;
      rows.push_back({static_cast<int64_t>(b) * batch.seq_len + (i - w.begin), w.doc, i,
                      ids[static_cast<size_t>(i + 1)]});
    }
  }
  return rows;
}

void ForEachLogitBlock(
    const MoeModel& model, const std::vector<float>& hidden, const std::vector<ScoredRow>& rows,
    const std::function<void(int64_t first, int64_t n, const float* logits)>& consume) {
  const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
  const int64_t R = static_cast<int64_t>(rows.size());
  // Reused by every call (a fresh 8 MiB block would be zeroed and page-faulted in each time).
  thread_local ScratchBuffer<float> gathered_buffer, logits_buffer;
  float* gathered = gathered_buffer.Get(static_cast<size_t>(kLogitBlockRows * H));  // [n, H]
  float* logits = logits_buffer.Get(static_cast<size_t>(kLogitBlockRows * V));      // [n, V]
  for (int64_t first = 0; first < R; first += kLogitBlockRows) {
    const int64_t n = std::min(kLogitBlockRows, R - first);
    for (int64_t j = 0; j < n; ++j)
      std::copy_n(hidden.begin() + rows[static_cast<size_t>(first + j)].batch_row * H, H,
                  gathered + j * H);
    LmLogits(model, gathered, n, logits);
    consume(first, n, logits);
  }
}

void ForEachScoredBlock(
    const MoeModel& model, const std::vector<float>& hidden, const std::vector<ScoredRow>& rows,
    const BaselineLogits* baseline, BaselineLogits* keep,
    const std::function<void(int64_t first, int64_t n, const LogitRowStats* stats)>& consume) {
  const int64_t V = model.config().vocab_size;
  std::vector<int32_t> targets;
  std::vector<LogitRowStats> stats;
  ForEachLogitBlock(model, hidden, rows, [&](int64_t first, int64_t n, const float* logits) {
    targets.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) targets[j] = rows[static_cast<size_t>(first + j)].target;
    stats.assign(static_cast<size_t>(n), LogitRowStats{});
    ScoreLogitRows({.logits = logits,
                    .rows = n,
                    .vocab = V,
                    .targets = targets.data(),
                    .baseline = baseline,
                    .baseline_row = first,
                    .keep = keep,
                    .keep_row = first},
                   stats.data());
    consume(first, n, stats.data());
  });
}

NextTokenScores BatchNextToken(const MoeModel& model, const Batch& batch,
                               const std::vector<float>& hidden,
                               std::span<const TraceWindow> windows,
                               std::span<const size_t> members, const Corpus& corpus) {
  NextTokenScores out;
  out.nll.assign(static_cast<size_t>(batch.tokens()), std::nanf(""));
  out.predicted.assign(out.nll.size(), -1);
  if (model.weights().lm_head.empty()) return out;  // a model without an LM head has no NLL
  const std::vector<ScoredRow> rows = ScoredRowsOf(batch, windows, members, corpus);
  ForEachScoredBlock(model, hidden, rows, nullptr, nullptr,
                     [&](int64_t first, int64_t n, const LogitRowStats* stats) {
                       for (int64_t j = 0; j < n; ++j) {
                         const size_t at =
                             static_cast<size_t>(rows[static_cast<size_t>(first + j)].batch_row);
                         out.nll[at] = static_cast<float>(stats[j].nll);
                         out.predicted[at] = stats[j].argmax;
                       }
                     });
  return out;
}

std::vector<float> BatchNll(const MoeModel& model, const Batch& batch,
                            const std::vector<float>& hidden, std::span<const TraceWindow> windows,
                            std::span<const size_t> members, const Corpus& corpus) {
  return BatchNextToken(model, batch, hidden, windows, members, corpus).nll;
}

}  // namespace moe
