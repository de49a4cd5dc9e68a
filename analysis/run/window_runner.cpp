#include "analysis/run/window_runner.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "analysis/run/next_token.h"
#include "core/error.h"
#include "core/heads.h"
#include "core/ops.h"

namespace moe {
Batch MakeWindowBatch(std::span<const TraceWindow> windows, std::span<const size_t> members,
                      const Corpus& corpus, int32_t pad_id, int64_t document_base) {
  Batch b;
  b.batch_size = static_cast<int64_t>(members.size());
  for (size_t m : members) b.seq_len = std::max(b.seq_len, windows[m].length());
  for (size_t m : members) {
    const TraceWindow& w = windows[m];
    const std::vector<int32_t>& ids = corpus.documents[static_cast<size_t>(w.doc)].ids;
    for (int64_t s = 0; s < b.seq_len; ++s) {
      const bool real = s < w.length();
      b.ids.push_back(real ? ids[static_cast<size_t>(w.begin + s)] : pad_id);
      b.mask.push_back(real ? 1 : 0);
      b.positions.push_back(real ? static_cast<int32_t>(s) : 1);
      b.documents.push_back(real ? static_cast<int32_t>(w.doc + document_base) : -1);
    }
  }
  return b;
}

std::vector<TraceWindow> PlanWindows(const Corpus& corpus, int64_t first_doc,
                                     const WindowRule& rule) {
  std::vector<TraceWindow> windows;
  for (int64_t d = first_doc; d < static_cast<int64_t>(corpus.documents.size()); ++d) {
    const auto split = SplitDocument(
        d, static_cast<int64_t>(corpus.documents[static_cast<size_t>(d)].ids.size()), rule);
    windows.insert(windows.end(), split.begin(), split.end());
  }
  return windows;
}

std::vector<size_t> LongestFirst(std::span<const TraceWindow> windows) {
  std::vector<size_t> order(windows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return windows[a].length() > windows[b].length(); });
  return order;
}

WindowRunner::WindowRunner(const MoeModel& model, const RoutingPolicy* policy, int kmax,
                           bool record_logits, int batch_size)
    : model_(model),
      policy_(policy),
      batch_size_(std::max(1, batch_size)),
      record_logits_(record_logits),
      recorder_(model.config().num_hidden_layers, model.config().num_experts, kmax, record_logits,
                model.config().moe_layer, model.config().shared_expert_width > 0),
      guard_(model.hooks().Add(&recorder_)) {}

std::vector<WindowResult> WindowRunner::Run(std::span<const TraceWindow> windows,
                                            const Corpus& corpus) {
  const std::vector<size_t> order = LongestFirst(windows);
  std::vector<WindowResult> results(windows.size());
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(batch_size_)) {
    const size_t count = std::min(static_cast<size_t>(batch_size_), order.size() - first);
    RunBatch(windows, std::span<const size_t>(order).subspan(first, count), corpus, results);
  }
  return results;
}

void WindowRunner::RunBatch(std::span<const TraceWindow> windows, std::span<const size_t> members,
                            const Corpus& corpus, std::vector<WindowResult>& results) {
  const ModelConfig& c = model_.config();
  const Batch batch =
      MakeWindowBatch(windows, members, corpus, c.has_pad_token ? c.pad_token_id : 0, document_base_);
  recorder_.Reset();
  const std::vector<float> hidden = model_.Forward(batch, nullptr, policy_);
  recorder_.CheckComplete();
  const NextTokenScores scores = BatchNextToken(model_, batch, hidden, windows, members, corpus);
  const size_t routed = static_cast<size_t>(c.num_hidden_layers) * recorder_.kmax();
  const size_t logit_width = static_cast<size_t>(c.num_hidden_layers) * c.num_experts;
  for (size_t b = 0; b < members.size(); ++b) {
    const TraceWindow& w = windows[members[b]];
    const int64_t row0 = recorder_.SequenceBegin(static_cast<int>(b));
    if (recorder_.SequenceBegin(static_cast<int>(b) + 1) - row0 != w.length())
      Fail("trace", "internal error: the routing hook saw another token count than the window");
    WindowResult& r = results[members[b]];
    const int64_t skip = w.record_begin - w.begin, n = w.end - w.record_begin;
    const size_t first_row = static_cast<size_t>(row0 + skip);
    for (int64_t s = skip; s < w.length(); ++s) {
      const size_t t = static_cast<size_t>(static_cast<int64_t>(b) * batch.seq_len + s);
      r.position.push_back(batch.positions[t]);
      r.nll.push_back(scores.nll[t]);
      r.predicted.push_back(scores.predicted[t]);
      if (recorder_.document()[row0 + s] != w.doc + document_base_)
        Fail("trace", "internal error: a routing row belongs to another document");
    }
    auto rows = [&](auto span, size_t width, auto& out) {
      out.assign(span.begin() + first_row * width, span.begin() + (first_row + n) * width);
    };
    rows(recorder_.topk_ids(), routed, r.topk_ids);
    rows(recorder_.topk_weights(), routed, r.topk_weights);
    if (record_logits_) rows(recorder_.router_logits(), logit_width, r.logits);
    if (c.shared_expert_width > 0)
      rows(recorder_.shared_gate(), static_cast<size_t>(c.num_hidden_layers), r.shared_gate);
  }
}

}  // namespace moe
