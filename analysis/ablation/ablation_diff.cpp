#include "analysis/ablation/ablation_diff.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moe {

RoutingDiff::RoutingDiff(int layers, int experts)
    : layers_(layers),
      experts_(experts),
      moved_(static_cast<size_t>(layers) * (experts + 1) * (experts + 1), 0),
      changed_(static_cast<size_t>(layers), 0),
      first_changed_(static_cast<size_t>(layers), 0) {
  if (layers < 1 || experts < 1) Fail("routing diff", "needs at least one layer and expert");
}

void RoutingDiff::AddToken(const int16_t* base, int base_k, const int16_t* policy, int policy_k) {
  const int E = experts_;
  std::vector<int> left, taken;
  auto holds = [E](const int16_t* ids, int k, int e) {
    for (int i = 0; i < k; ++i)
      if (ids[i] == e && e >= 0 && e < E) return true;
    return false;
  };
  for (int l = 0; l < layers_; ++l) {
    const int16_t* b = base + static_cast<size_t>(l) * base_k;
    const int16_t* p = policy + static_cast<size_t>(l) * policy_k;
    left.clear();
    taken.clear();
    for (int i = 0; i < base_k; ++i)
      if (b[i] >= 0 && b[i] < E && !holds(p, policy_k, b[i])) left.push_back(b[i]);
    for (int i = 0; i < policy_k; ++i)
      if (p[i] >= 0 && p[i] < E && !holds(b, base_k, p[i])) taken.push_back(p[i]);
    const int16_t first_b = base_k > 0 ? b[0] : -1, first_p = policy_k > 0 ? p[0] : -1;
    first_changed_[static_cast<size_t>(l)] += first_b != first_p;
    if (left.empty() && taken.empty()) continue;
    ++changed_[static_cast<size_t>(l)];
    const size_t n = std::max(left.size(), taken.size());
    for (size_t i = 0; i < n; ++i) {
      const int from = i < left.size() ? left[i] : E, to = i < taken.size() ? taken[i] : E;
      ++moved_[(static_cast<size_t>(l) * (E + 1) + from) * (E + 1) + to];
    }
  }
  ++tokens_;
}

void KeepLargestChanges(std::vector<PredictionChange>& changes, size_t cap) {
  // Changes arrive in batch order (windows sorted by length); the token index makes the order
  // and the cut independent of it.
  std::sort(changes.begin(), changes.end(),
            [](const PredictionChange& a, const PredictionChange& b) {
              const double da = std::abs(a.delta_nll()), db = std::abs(b.delta_nll());
              return da != db ? da > db : a.token < b.token;
            });
  if (changes.size() > cap) changes.resize(cap);
}

}  // namespace moe
