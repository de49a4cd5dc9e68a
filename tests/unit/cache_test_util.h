#pragma once
// Hand-made request sequences for the expert-cache tests.
#include <cstdint>
#include <vector>

#include "analysis/cache/expert_cache.h"

namespace moe::test {

// One token per entry, each with its requested experts (-1: no request).
inline RequestSequence Sequence(const std::vector<std::vector<int16_t>>& tokens) {
  RequestSequence r;
  for (const auto& t : tokens) r.AddToken(t);
  return r;
}

}  // namespace moe::test
