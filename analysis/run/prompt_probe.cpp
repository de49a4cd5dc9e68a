#include "analysis/run/prompt_probe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/heads.h"
#include "core/hooks.h"
#include "core/vocab_math.h"

namespace moe {
namespace {

// Copies each layer's executed selection into the probe's [T, L, kmax] arrays. A layer can take
// fewer than kmax experts (a top-k override), so rows are padded.
class SelectionCapture : public RoutingObserver {
 public:
  explicit SelectionCapture(PromptProbe& probe) : p_(probe) {}
  std::vector<HookRequest> Requests() const override {
    return {{HookSite::kTopkIds, -1}, {HookSite::kTopkWeights, -1}};
  }
  void OnEvent(const HookEvent& ev) override {
    const int64_t k = std::min<int64_t>(ev.cols, p_.kmax);
    for (int64_t t = 0; t < ev.rows && t < p_.size(); ++t) {
      const size_t row = p_.Row(t, ev.layer);
      for (int64_t j = 0; j < k; ++j) {
        if (ev.site == HookSite::kTopkIds)
          p_.topk_ids[row + j] = ev.ids[t * ev.cols + j];
        else
          p_.topk_weights[row + j] = ev.values[t * ev.cols + j];
      }
    }
  }

 private:
  PromptProbe& p_;
};

// "#id" for ids past the tokenizer's pieces (a model's vocab_size may exceed them). Appended
// rather than "#" + to_string, which GCC 12 flags with a false -Wrestrict.
std::string IdText(int32_t id) {
  std::string s(1, '#');
  s += std::to_string(id);
  return s;
}

}  // namespace

PromptProbe Probe(const LoadedModel& m, const std::string& text, const RoutingPolicy* policy,
                  int top_n) {
  const Tokenizer& tok = m.RequireTokenizer();
  const ModelConfig& c = m.config();
  if (!c.is_moe) Fail(m.dir.string(), "is a dense LLaMA without routers; there is no routing");
  if (policy != nullptr) policy->Validate(c);
  PromptProbe p;
  p.ids = tok.Encode(text);
  if (static_cast<int64_t>(p.ids.size()) > c.context_length())
    Fail("prompt", std::to_string(p.ids.size()) + " tokens, more than the context length " +
                       std::to_string(c.context_length()));
  for (int32_t id : p.ids) p.pieces.push_back(tok.Piece(id));
  p.layers = c.num_hidden_layers;
  p.kmax = (policy != nullptr ? *policy : RoutingPolicy{}).MaxSelections(c);
  const size_t cells = static_cast<size_t>(p.size()) * p.layers * p.kmax;
  p.topk_ids.assign(cells, -1);
  p.topk_weights.assign(cells, 0.0f);

  std::vector<float> hidden;
  {
    SelectionCapture capture(p);
    HookGuard guard = m.model->hooks().Add(&capture);
    hidden = m.model->Forward(Batch::Single(p.ids), nullptr, policy);
  }
  // Only the last position predicts the next token.
  const int64_t H = c.hidden_size;
  const std::vector<float> logits = LmLogits(*m.model, hidden.data() + (p.size() - 1) * H, 1);
  const int64_t V = static_cast<int64_t>(logits.size());
  const double log_sum_exp = LogSumExp(logits.data(), V);
  // Probabilities rise with the logits: the order of the logits, ties lower id first, is
  // deterministic, and only the top n need their probability.
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t n = std::min(order.size(), static_cast<size_t>(std::max(0, top_n)));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](int32_t a, int32_t b) {
                      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                    });
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = order[i];
    const double prob = std::exp(static_cast<double>(logits[id]) - log_sum_exp);
    p.next.push_back({id, id < tok.vocab_size() ? tok.Piece(id) : IdText(id), prob});
  }
  return p;
}

}  // namespace moe
