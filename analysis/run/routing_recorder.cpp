#include "analysis/run/routing_recorder.h"

#include <algorithm>

#include "core/error.h"

namespace moe {
namespace {

constexpr int kIds = 0, kWeights = 1, kLogits = 2;

}  // namespace

RoutingRecorder::RoutingRecorder(int num_layers, int num_experts, int kmax, bool record_logits,
                                 std::vector<uint8_t> moe_layers, bool record_shared_gate)
    : num_layers_(num_layers),
      num_experts_(num_experts),
      kmax_(kmax),
      moe_layers_(std::move(moe_layers)),
      record_logits_(record_logits),
      record_shared_gate_(record_shared_gate) {
  if (num_layers < 1 || num_experts < 1 || kmax < 1 || kmax > num_experts)
    Fail("routing recorder", "needs layers >= 1 and 1 <= kmax <= experts");
  if (moe_layers_.empty()) moe_layers_.assign(static_cast<size_t>(num_layers), 1);
  if (static_cast<int>(moe_layers_.size()) != num_layers)
    Fail("routing recorder", "needs one MoE/dense flag per layer");
  Reset();
}

std::vector<HookRequest> RoutingRecorder::Requests() const {
  std::vector<HookRequest> r = {{HookSite::kTopkIds, -1}, {HookSite::kTopkWeights, -1}};
  if (record_logits_) r.push_back({HookSite::kRouterLogits, -1});
  if (record_shared_gate_) r.push_back({HookSite::kSharedExpertGate, -1});
  return r;
}

void RoutingRecorder::Reset() {
  span_ = nullptr;
  span_count_ = 0;
  rows_ = 0;
  row_of_.clear();
  sequence_begin_.assign(1, 0);
  position_.clear();
  document_.clear();
  topk_ids_.clear();
  topk_weights_.clear();
  router_logits_.clear();
  shared_gate_.clear();
  seen_.assign(static_cast<size_t>(3 * num_layers_), 0);
}

void RoutingRecorder::MapRows(const TokenSpan& span) {
  span_ = &span;
  span_count_ = span.count;
  // Count the real rows of each batch row, then give each its trace row: grouped by batch row,
  // emission order within it.
  int32_t sequences = 0;
  for (int64_t t = 0; t < span.count; ++t) {
    if (span.sequence[t] < 0) Fail("routing recorder", "event row has a negative sequence index");
    sequences = std::max(sequences, span.sequence[t] + 1);
  }
  sequence_begin_.assign(static_cast<size_t>(sequences) + 1, 0);
  for (int64_t t = 0; t < span.count; ++t)
    if (span.real[t]) ++sequence_begin_[static_cast<size_t>(span.sequence[t]) + 1];
  for (int32_t b = 0; b < sequences; ++b) sequence_begin_[b + 1] += sequence_begin_[b];
  rows_ = sequence_begin_.back();
  std::vector<int64_t> next(sequence_begin_.begin(), sequence_begin_.end() - 1);
  row_of_.assign(static_cast<size_t>(span.count), -1);
  position_.resize(static_cast<size_t>(rows_));
  document_.resize(static_cast<size_t>(rows_));
  for (int64_t t = 0; t < span.count; ++t) {
    if (!span.real[t]) continue;
    const int64_t row = next[static_cast<size_t>(span.sequence[t])]++;
    row_of_[t] = row;
    position_[row] = span.position[t];
    document_[row] = span.document != nullptr ? span.document[t] : -1;
  }
  const size_t routed = static_cast<size_t>(rows_) * num_layers_ * kmax_;
  topk_ids_.assign(routed, -1);
  topk_weights_.assign(routed, 0.0f);
  if (record_logits_)
    router_logits_.assign(static_cast<size_t>(rows_) * num_layers_ * num_experts_, 0.0f);
  if (record_shared_gate_) shared_gate_.assign(static_cast<size_t>(rows_) * num_layers_, 0.0f);
}

void RoutingRecorder::CheckSpan(const HookEvent& e) const {
  if (e.tokens == nullptr || e.tokens->count != span_count_ || e.rows != span_count_)
    Fail("routing recorder", std::string(HookSiteName(e.site)) + " of layer " +
                                 std::to_string(e.layer) +
                                 " covers other tokens than the rest of this forward pass "
                                 "(call Reset before each forward)");
  if (e.layer < 0 || e.layer >= num_layers_)
    Fail("routing recorder", "event for layer " + std::to_string(e.layer) + " is out of range");
}

void RoutingRecorder::OnEvent(const HookEvent& e) {
  if (span_ == nullptr) MapRows(*e.tokens);
  CheckSpan(e);
  const int64_t l = e.layer;
  switch (e.site) {
    case HookSite::kTopkIds:
    case HookSite::kTopkWeights: {
      if (e.cols > kmax_)
        Fail("routing recorder", "layer " + std::to_string(l) + " selected " +
                                     std::to_string(e.cols) + " experts, more than kmax " +
                                     std::to_string(kmax_));
      const bool ids = e.site == HookSite::kTopkIds;
      for (int64_t t = 0; t < e.rows; ++t) {
        const int64_t row = row_of_[t];
        if (row < 0) continue;
        const size_t at = static_cast<size_t>((row * num_layers_ + l) * kmax_);
        for (int64_t j = 0; j < e.cols; ++j) {
          if (ids)
            topk_ids_[at + j] = static_cast<int16_t>(e.ids[t * e.cols + j]);
          else
            topk_weights_[at + j] = e.values[t * e.cols + j];
        }
      }
      seen_[(ids ? kIds : kWeights) * num_layers_ + l] = 1;
      break;
    }
    case HookSite::kRouterLogits: {
      if (e.cols != num_experts_)
        Fail("routing recorder", "router logits have " + std::to_string(e.cols) +
                                     " columns, expected " + std::to_string(num_experts_));
      for (int64_t t = 0; t < e.rows; ++t) {
        const int64_t row = row_of_[t];
        if (row < 0) continue;
        std::copy_n(e.values + t * e.cols, e.cols,
                    router_logits_.begin() + (row * num_layers_ + l) * num_experts_);
      }
      seen_[kLogits * num_layers_ + l] = 1;
      break;
    }
    case HookSite::kSharedExpertGate: {  // [T, 1]; not sent when the shared expert did not run
      if (e.cols != 1) Fail("routing recorder", "the shared expert gate must have one column");
      for (int64_t t = 0; t < e.rows; ++t)
        if (row_of_[t] >= 0)
          shared_gate_[static_cast<size_t>(row_of_[t] * num_layers_ + l)] = e.values[t];
      break;
    }
    default:
      break;
  }
}

void RoutingRecorder::CheckComplete() const {
  if (span_ == nullptr) Fail("routing recorder", "no routing events since Reset");
  for (int l = 0; l < num_layers_; ++l) {
    if (!moe_layers_[l]) continue;  // a dense layer: its ids stay -1
    if (!seen_[kIds * num_layers_ + l] || !seen_[kWeights * num_layers_ + l] ||
        (record_logits_ && !seen_[kLogits * num_layers_ + l]))
      Fail("routing recorder", "layer " + std::to_string(l) + " sent no routing events");
  }
}

}  // namespace moe
