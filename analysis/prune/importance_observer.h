#pragma once
// The hook observer behind MeasureExpertImportance (expert_importance.h): per-document sums of
// the routed tokens, combine weights, REAP terms and output changes of every (layer, expert), and
// the largest expert output magnitudes. It watches routing, expert outputs and the MoE block's
// input and output; for the output change it reruns the MoE block of the tokens that picked an
// expert with that expert disabled (reroute), through core's MoeLayer with no hooks.
#include <cstdint>
#include <vector>

#include "core/hooks.h"
#include "core/moe_model.h"

namespace moe {

// Per-document sums, [D, L, E] each, and per-(layer, expert) maxima.
struct ImportanceSums {
  int64_t documents = 0;
  int layers = 0, experts = 0;
  std::vector<double> routed, gate, reap, change;  // [D * L * E]
  std::vector<double> max_activation;              // [L * E]

  size_t At(int64_t doc, int layer, int expert) const {
    return (static_cast<size_t>(doc) * layers + layer) * experts + expert;
  }
};

class ImportanceObserver : public RoutingObserver {
 public:
  ImportanceObserver(const MoeModel& model, int64_t documents, bool output_change);

  // Before each forward pass: row r of the batch counts its tokens from position
  // record_from[r] on (earlier ones are context of an overlapping window).
  void SetRecordFrom(std::vector<int32_t> record_from) { record_from_ = std::move(record_from); }
  const ImportanceSums& sums() const { return sums_; }

  std::vector<HookRequest> Requests() const override;
  void OnEvent(const HookEvent& event) override;

 private:
  bool Counted(const TokenSpan& span, int64_t t) const;
  void OnRouting(const HookEvent& event);
  void OnExpertOutput(const HookEvent& event);
  void OnMoeOutput(const HookEvent& event);

  const MoeModel& model_;
  bool output_change_;
  ImportanceSums sums_;
  std::vector<int32_t> record_from_;
  // The current layer's executed routing [T, k] and MoE input [T, H].
  int k_ = 0;
  std::vector<int32_t> ids_;
  std::vector<float> weights_, input_;
};

}  // namespace moe
