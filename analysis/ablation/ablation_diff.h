#pragma once
// What an ablation changed token by token, under the per-domain means of ablation_result.h:
// the next-token predictions whose top-1 changed, and the routing diff -- at every layer, which
// experts the tokens left and which they took instead. RunAblation fills it when
// AblationOptions::diff is set (moescope-studio's ablation panel shows it).
//
// Moves: at one layer, a token's executed selections under the baseline and under the policy
// are compared as sets of experts. Experts only in the baseline's were left, experts only in the
// policy's were taken; the i-th left expert (in the baseline's order, highest weight first) is
// paired with the i-th taken one (in the policy's order) as one move from -> to. When the policy
// selects fewer experts (drop, a smaller top-k) the left experts without a partner move to
// "none" (index E); when it selects more, the extra ones come from "none".
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// One scored prediction whose top-1 changed.
struct PredictionChange {
  int64_t token = 0;      // scored-token index (corpus order, as AblationResult's token values)
  int64_t document = 0;   // index of the document in the ablation's corpus
  std::string source_id;  // that document's source id
  int16_t domain = 0;
  int32_t position = 0;  // of the token in its document; the prediction is of position + 1
  int32_t token_id = 0, target = 0;        // the input token and the true next token
  int32_t base_top1 = 0, policy_top1 = 0;  // the most probable next token before and after
  double base_nll = 0, policy_nll = 0;     // of the true next token, nats
  double delta_nll() const { return policy_nll - base_nll; }
};

// Routing moves between the baseline's and the policy's selections, per layer.
class RoutingDiff {
 public:
  RoutingDiff() = default;
  RoutingDiff(int layers, int experts);

  // One token's executed selections at every layer: [L, base_k] and [L, policy_k] expert ids,
  // highest weight first, -1 pads.
  void AddToken(const int16_t* base, int base_k, const int16_t* policy, int policy_k);

  int layers() const { return layers_; }
  int experts() const { return experts_; }
  int64_t tokens() const { return tokens_; }  // tokens compared
  // Moves at `layer` from expert `from` to expert `to`; either may be experts() for "none".
  int64_t Moved(int layer, int from, int to) const {
    return moved_[(static_cast<size_t>(layer) * (experts_ + 1) + from) * (experts_ + 1) + to];
  }
  const std::vector<int64_t>& moved() const { return moved_; }  // [L, E + 1, E + 1]
  // Tokens whose set of experts at the layer differs, and whose first expert differs.
  const std::vector<int64_t>& changed() const { return changed_; }              // [L]
  const std::vector<int64_t>& first_changed() const { return first_changed_; }  // [L]

 private:
  int layers_ = 0, experts_ = 0;
  int64_t tokens_ = 0;
  std::vector<int64_t> moved_, changed_, first_changed_;
};

// One policy's token-level differences from the baseline.
struct AblationDiff {
  std::string policy;
  int64_t predictions = 0;          // scored predictions compared
  int64_t changed_predictions = 0;  // of them, with another top-1 (all, even past the cap)
  // Changed predictions, the largest |ΔNLL| first, at most AblationOptions::max_changes.
  std::vector<PredictionChange> changes;
  RoutingDiff routing;  // over the scored tokens
};

// Orders `changes` by |ΔNLL|, largest first (ties: lower token index first), and keeps the
// first `cap`.
void KeepLargestChanges(std::vector<PredictionChange>& changes, size_t cap);

}  // namespace moe
