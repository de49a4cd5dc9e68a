#pragma once
// Finding NaN and infinity in float tensors (F32, F16, BF16) as they sit in a checkpoint, so a
// broken checkpoint fails at load instead of giving NaN outputs or, worse, finite but wrong ones
// (a NaN in q_proj makes whole score rows NaN, which softmax code can take for masked keys).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moe {

struct NonFiniteValue {
  int64_t index = 0;  // row-major element index
  float value = 0;    // NaN, +inf or -inf
};

// The first element that is NaN or infinite; nullopt when all are finite or the dtype is not a
// float type. Reads the raw bits (an exponent of all ones), in chunks spread over the OpenMP
// threads, so a multi-GB checkpoint is scanned at memory speed.
std::optional<NonFiniteValue> FindNonFinite(const TensorView& tensor);

// "NaN", "+inf" or "-inf".
std::string NonFiniteName(float value);

// Throws Error "<subject> holds NaN at element 123" when the tensor holds a non-finite value.
void RequireFinite(const TensorView& tensor, const std::string& subject);

// The same for many tensors, each with its subject: all are scanned in one parallel loop (one
// per tensor would pay a thread barrier per tensor, which on a busy machine costs more than the
// scan), and the error names the first tensor, in order, that holds a non-finite value.
void RequireAllFinite(const std::vector<std::pair<std::string, TensorView>>& tensors);

}  // namespace moe
