#pragma once
// One forward pass of a short prompt, for interactive inspection (moescope-studio's live prompt
// view): the prompt's tokens, every token's executed top-k experts and weights at every layer
// (captured through a RoutingObserver), and the model's top-n next-token predictions after the
// last token. A routing policy, when given, intervenes as in every other run (core
// routing_policy.h), so a probe with experts disabled can be set against the unmodified one.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model_loader.h"
#include "core/routing_policy.h"

namespace moe {

struct NextTokenPrediction {
  int32_t id = -1;
  std::string piece;         // the SentencePiece piece, as the tokenizer spells it
  double probability = 0.0;  // softmax of the LM logits after the last prompt token
};

struct PromptProbe {
  std::vector<int32_t> ids;               // [T], BOS first, as Tokenizer::Encode gives them
  std::vector<std::string> pieces;        // [T]
  int layers = 0, kmax = 0;               // kmax: the most experts a token takes in any layer
  std::vector<int32_t> topk_ids;          // [T, L, kmax], descending weight; -1 pads
  std::vector<float> topk_weights;        // [T, L, kmax], before the score scale factor; 0 pads
  std::vector<NextTokenPrediction> next;  // top_n, most probable first

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  size_t Row(int64_t t, int layer) const {
    return (static_cast<size_t>(t) * layers + layer) * kmax;
  }
};

// Tokenizes `text` (with BOS) and runs it once. `policy` may be null. Throws Error when the model
// has no tokenizer, the policy does not fit the model, or the prompt is longer than the context.
// The probe registers a hook on the model for the duration of the call: one probe at a time per
// model, and not while another run (a trace, an ablation) uses the same model's hooks.
PromptProbe Probe(const LoadedModel& model, const std::string& text, const RoutingPolicy* policy,
                  int top_n);

}  // namespace moe
