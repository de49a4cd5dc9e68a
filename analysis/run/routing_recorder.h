#pragma once
// A hook observer that turns one forward pass's routing events into per-token rows: executed
// top-k ids and weights for every layer, and optionally all router logits. Padding rows
// (TokenSpan.real == 0) are dropped; the rows that remain are grouped by batch row
// (TokenSpan.sequence), in the order the engine emitted them within each row.
#include <cstdint>
#include <span>
#include <vector>

#include "core/hooks.h"

namespace moe {

class RoutingRecorder final : public RoutingObserver {
 public:
  // kmax: columns per layer in the rows (a layer that selects fewer pads with id -1, weight 0).
  // `moe_layers` [L] (ModelConfig::moe_layer): layers without a router send no routing events and
  // keep -1 ids; empty = every layer routes. `record_shared_gate`: also keep the weight each
  // layer's shared expert was added with (0 where it did not run: dense layers, a policy).
  RoutingRecorder(int num_layers, int num_experts, int kmax, bool record_logits,
                  std::vector<uint8_t> moe_layers = {}, bool record_shared_gate = false);

  std::vector<HookRequest> Requests() const override;
  void OnEvent(const HookEvent& event) override;

  // Forgets the previous forward pass; call before each one.
  void Reset();
  // Throws Error unless every layer delivered ids and weights (and logits when recorded) since
  // Reset.
  void CheckComplete() const;

  int64_t rows() const { return rows_; }
  int num_sequences() const { return static_cast<int>(sequence_begin_.size()) - 1; }
  // Rows of batch row b are [SequenceBegin(b), SequenceBegin(b + 1)).
  int64_t SequenceBegin(int b) const { return sequence_begin_[static_cast<size_t>(b)]; }

  std::span<const int32_t> position() const { return position_; }          // [rows]
  std::span<const int32_t> document() const { return document_; }          // [rows]
  std::span<const int16_t> topk_ids() const { return topk_ids_; }          // [rows, L, kmax]
  std::span<const float> topk_weights() const { return topk_weights_; }    // [rows, L, kmax]
  std::span<const float> router_logits() const { return router_logits_; }  // [rows, L, E]
  std::span<const float> shared_gate() const { return shared_gate_; }      // [rows, L]

  int num_layers() const { return num_layers_; }
  int num_experts() const { return num_experts_; }
  int kmax() const { return kmax_; }

 private:
  // Builds the event-row -> trace-row map from the first event of a forward pass.
  void MapRows(const TokenSpan& span);
  void CheckSpan(const HookEvent& event) const;

  int num_layers_, num_experts_, kmax_;
  std::vector<uint8_t> moe_layers_;  // [L]
  bool record_logits_, record_shared_gate_;

  const TokenSpan* span_ = nullptr;  // the span the map was built from
  int64_t span_count_ = 0;
  std::vector<int64_t> row_of_;          // [event rows] trace row, -1 for padding
  std::vector<int64_t> sequence_begin_;  // [B + 1]
  int64_t rows_ = 0;
  std::vector<int32_t> position_, document_;
  std::vector<int16_t> topk_ids_;
  std::vector<float> topk_weights_, router_logits_, shared_gate_;
  std::vector<uint8_t> seen_;  // [3, L]: ids, weights, logits delivered per layer
};

}  // namespace moe
