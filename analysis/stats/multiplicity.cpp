#include "analysis/stats/multiplicity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moe {

std::vector<double> BenjaminiHochberg(std::span<const double> p) {
  std::vector<double> q(p.size(), std::numeric_limits<double>::quiet_NaN());
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) order.push_back(i);
  // Ascending p; ties keep their index order so the result does not depend on the sort.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  const double m = static_cast<double>(order.size());
  double running = 1.0;
  for (size_t rank = order.size(); rank-- > 0;) {
    const size_t i = order[rank];
    running = std::min(running, p[i] * m / static_cast<double>(rank + 1));
    q[i] = std::min(running, 1.0);
  }
  return q;
}

int PermutationsForFamily(int64_t family_size, double alpha, int min_count, int max_count) {
  const double needed = std::ceil(static_cast<double>(std::max<int64_t>(family_size, 1)) / alpha);
  return static_cast<int>(
      std::clamp(needed, static_cast<double>(min_count), static_cast<double>(max_count)));
}

}  // namespace moe
