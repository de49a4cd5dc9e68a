#include "core/activation_precision.h"

#include <atomic>

namespace moe {
namespace {

std::atomic<ActivationPrecision> g_activation_precision{ActivationPrecision::kF32};

}  // namespace

void SetActivationPrecision(ActivationPrecision precision) {
  g_activation_precision.store(precision);
}

ActivationPrecision GetActivationPrecision() {
  return g_activation_precision.load();
}

}  // namespace moe
