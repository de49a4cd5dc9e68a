#include "analysis/run/corpus_scoring.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>

#include "analysis/run/next_token.h"
#include "analysis/run/window_runner.h"

namespace moe {

CorpusScore ScoreCorpus(const MoeModel& model, const Corpus& corpus,
                        const CorpusScoreOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = model.config();
  if (options.policy != nullptr) options.policy->Validate(c);
  const int32_t pad_id = c.has_pad_token ? c.pad_token_id : 0;
  const size_t per_batch = static_cast<size_t>(std::max(1, options.batch_size));
  const std::vector<TraceWindow> windows = PlanWindows(corpus, 0, options.windows);
  CorpusScore score;
  score.documents.resize(corpus.documents.size());
  if (options.token_nll)
    for (size_t d = 0; d < corpus.documents.size(); ++d)
      score.documents[d].token_nll.assign(std::max<size_t>(corpus.documents[d].ids.size(), 1) - 1,
                                          std::nanf(""));
  const size_t group = per_batch * kBatchesPerWindowGroup;
  for (size_t first = 0; first < windows.size(); first += group) {
    const auto part = std::span<const TraceWindow>(windows).subspan(
        first, std::min(group, windows.size() - first));
    const std::vector<size_t> order = LongestFirst(part);
    for (size_t b0 = 0; b0 < order.size(); b0 += per_batch) {
      const auto members =
          std::span<const size_t>(order).subspan(b0, std::min(per_batch, order.size() - b0));
      const Batch batch = MakeWindowBatch(part, members, corpus, pad_id);
      const std::vector<float> hidden = model.Forward(batch, nullptr, options.policy);
      const std::vector<float> nll = BatchNll(model, batch, hidden, part, members, corpus);
      for (size_t b = 0; b < members.size(); ++b) {
        const TraceWindow& w = part[members[b]];
        DocumentScore& d = score.documents[static_cast<size_t>(w.doc)];
        score.tokens += w.end - w.record_begin;
        for (int64_t s = w.record_begin - w.begin; s < w.length(); ++s) {
          const float x = nll[static_cast<size_t>(static_cast<int64_t>(b) * batch.seq_len + s)];
          if (std::isnan(x)) continue;
          if (options.token_nll) d.token_nll[static_cast<size_t>(w.begin + s)] = x;
          d.total_nll += x;
          ++d.predicted;
        }
      }
    }
  }
  score.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return score;
}

}  // namespace moe
