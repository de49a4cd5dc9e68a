#include "core/dynamic_k.h"

#include <algorithm>
#include <cmath>

#include "core/ops.h"

namespace moe {

bool HasDynamicK(const LayerPolicy& p) {
  return p.threshold > 0 || p.skip_beta > 0 || p.top_p > 0;
}

void DynamicKScores(const ModelConfig& c, const float* z, const float* s, std::vector<float>& q) {
  const int E = c.num_experts;
  if (c.router_score == RouterScore::kLogits) {
    q.assign(z, z + E);
    Softmax(q.data(), E);
    return;
  }
  q.assign(s, s + E);
}

void ApplyDynamicK(const LayerPolicy& p, const std::vector<float>& q,
                   std::vector<int32_t>& chosen) {
  if (chosen.empty()) return;
  if (p.threshold > 0) {
    float top = 0;
    for (int32_t e : chosen) top = std::max(top, q[e]);
    size_t keep =
        std::min<size_t>(static_cast<size_t>(std::max(p.threshold_k_min, 1)), chosen.size());
    while (keep < chosen.size() && q[chosen[keep]] >= p.threshold * top) ++keep;
    chosen.resize(keep);
  }
  if (p.skip_beta > 0) {
    const int32_t first = chosen[0];
    std::erase_if(chosen, [&](int32_t e) { return e != first && q[e] < p.skip_beta * q[first]; });
  }
  if (p.top_p > 0) {
    double total = 0;
    for (float x : q) total += x;
    double mass = 0;
    size_t keep = 0;
    while (keep < chosen.size() && (keep == 0 || mass < p.top_p * total)) mass += q[chosen[keep++]];
    chosen.resize(keep);
  }
}

}  // namespace moe
