#pragma once
// One forward pass with everything recorded under the tensor names of the golden files
// (shared by `moescope forward`, the tests and the Python module):
//   logits [B,S,V], final_hidden [B,S,H], layers.{l}.gate_logits [T,E],
//   layers.{l}.topk_indices [T,k] I32, layers.{l}.topk_scores [T,k], layers.{l}.load [E] I32,
//   layers.{l}.importance [E]; with activations also embeddings, layers.{l}.attn_out, moe_in,
//   moe_out, hidden_out [B,S,H]. Head outputs: cls_logits / pooled_index, start_logits /
//   end_logits.
#include <vector>

#include "core/batch.h"
#include "core/moe_model.h"
#include "core/tensor.h"

namespace moe {

struct ForwardRecordOptions {
  bool activations = false;  // also record the residual-stream tensors
  const RoutingPolicy* policy = nullptr;
};

std::vector<OwnedTensor> RecordForward(const MoeModel& model, const Batch& batch,
                                       const ForwardRecordOptions& options = {});

}  // namespace moe
