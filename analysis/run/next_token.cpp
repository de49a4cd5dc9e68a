#include "analysis/run/next_token.h"

#include <algorithm>
#include <cmath>

#include "core/heads.h"
#include "core/ops.h"

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
    const MoeModel& model, const std::vector<float>& hidden,
    const std::vector<ScoredRow>& rows,
    const std::function<void(int64_t first, int64_t n, const float* logits)>& consume) {
  const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<float> gathered, logits;  // [n, H], [n, V]
  for (int64_t first = 0; first < R; first += kLogitBlockRows) {
    const int64_t n = std::min(kLogitBlockRows, R - first);
    gathered.resize(static_cast<size_t>(n * H));
    logits.resize(static_cast<size_t>(n * V));
    for (int64_t j = 0; j < n; ++j)
      std::copy_n(hidden.begin() + rows[static_cast<size_t>(first + j)].batch_row * H, H,
                  gathered.begin() + j * H);
    LmLogits(model, gathered.data(), n, logits.data());
    consume(first, n, logits.data());
  }
}

NextTokenScores BatchNextToken(const MoeModel& model, const Batch& batch,
                               const std::vector<float>& hidden,
                               std::span<const TraceWindow> windows,
                               std::span<const size_t> members, const Corpus& corpus) {
  NextTokenScores out;
  out.nll.assign(static_cast<size_t>(batch.tokens()), std::nanf(""));
  out.predicted.assign(out.nll.size(), -1);
  if (model.weights().lm_head.empty()) return out;  // a model without an LM head has no NLL
  const int64_t V = model.config().vocab_size;
  const std::vector<ScoredRow> rows = ScoredRowsOf(batch, windows, members, corpus);
  ForEachLogitBlock(model, hidden, rows, [&](int64_t first, int64_t n, const float* logits) {
    for (int64_t j = 0; j < n; ++j) {
      const ScoredRow& row = rows[static_cast<size_t>(first + j)];
      const float* z = logits + j * V;
      const size_t at = static_cast<size_t>(row.batch_row);
      out.nll[at] = static_cast<float>(-LogProbability(z, V, row.target));
      out.predicted[at] = static_cast<int32_t>(std::max_element(z, z + V) - z);
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
