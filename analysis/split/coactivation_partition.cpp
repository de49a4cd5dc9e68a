#include "analysis/split/coactivation_partition.h"

#include <algorithm>
#include <numeric>

#include "analysis/split/split_random.h"
#include "core/error.h"

namespace moe {
namespace {

// The edge weight, with the diagonal read as 0.
inline double Edge(const std::vector<float>& a, int64_t n, int64_t i, int64_t j) {
  return i == j ? 0.0 : static_cast<double>(a[static_cast<size_t>(i * n + j)]);
}

// conn[i * k + p] += sign * A[i][v] for every i (the weight from i to part p changes by v).
void AddToPart(const std::vector<float>& a, int64_t n, int k, int p, int64_t v, double sign,
               std::vector<double>& conn) {
  for (int64_t i = 0; i < n; ++i) conn[static_cast<size_t>(i * k + p)] += sign * Edge(a, n, i, v);
}

}  // namespace

GraphPartitionResult BalancedGraphPartition(const std::vector<float>& a, int64_t n,
                                            const std::vector<int>& sizes, uint64_t seed, int layer,
                                            int max_passes) {
  const int k = static_cast<int>(sizes.size());
  if (k < 1 || std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != n)
    Fail("co-activation partition", "part sizes do not add up to the number of neurons");
  if (a.size() != static_cast<size_t>(n * n))
    Fail("co-activation partition", "the co-activation matrix is not n x n");

  std::vector<int> part(static_cast<size_t>(n), -1);
  std::vector<int> count(static_cast<size_t>(k), 0);
  std::vector<double> conn(static_cast<size_t>(n * k), 0.0);  // weight from neuron i to part p
  auto assign = [&](int64_t v, int p) {
    part[v] = p;
    ++count[p];
    AddToPart(a, n, k, p, v, 1.0, conn);
  };

  // Seeds: spread out over the graph.
  SplitMix64 rng(seed, SplitStream::kCoactivation, static_cast<uint64_t>(layer));
  std::vector<double> to_seeds(static_cast<size_t>(n), 0.0);  // total weight to chosen seeds
  for (int p = 0; p < k; ++p) {
    if (sizes[p] == 0) continue;
    int64_t pick = -1;
    if (p == 0) {
      pick = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(n));
    } else {
      for (int64_t i = 0; i < n; ++i)
        if (part[i] < 0 && (pick < 0 || to_seeds[i] < to_seeds[pick])) pick = i;
    }
    assign(pick, p);
    for (int64_t i = 0; i < n; ++i) to_seeds[i] += Edge(a, n, i, pick);
  }

  // Growth: round robin over parts with room.
  int64_t left = n - std::count_if(part.begin(), part.end(), [](int p) { return p >= 0; });
  while (left > 0) {
    for (int p = 0; p < k && left > 0; ++p) {
      if (count[p] >= sizes[p]) continue;
      int64_t best = -1;
      for (int64_t i = 0; i < n; ++i)
        if (part[i] < 0 && (best < 0 || conn[i * k + p] > conn[best * k + p])) best = i;
      assign(best, p);
      --left;
    }
  }

  // Refinement: best positive-gain swap for each neuron in turn.
  GraphPartitionResult r;
  const double eps = 1e-9;
  for (r.passes = 0; r.passes < max_passes;) {
    ++r.passes;
    bool swapped = false;
    for (int64_t u = 0; u < n; ++u) {
      const int pa = part[u];
      double best_gain = eps;
      int64_t best_v = -1;
      for (int64_t v = 0; v < n; ++v) {
        const int pb = part[v];
        if (pb == pa) continue;
        const double gain = conn[u * k + pb] - conn[u * k + pa] + conn[v * k + pa] -
                            conn[v * k + pb] - 2.0 * Edge(a, n, u, v);
        if (gain > best_gain) {
          best_gain = gain;
          best_v = v;
        }
      }
      if (best_v < 0) continue;
      const int pb = part[best_v];
      AddToPart(a, n, k, pa, u, -1.0, conn);
      AddToPart(a, n, k, pb, best_v, -1.0, conn);
      AddToPart(a, n, k, pb, u, 1.0, conn);
      AddToPart(a, n, k, pa, best_v, 1.0, conn);
      part[u] = pb;
      part[best_v] = pa;
      swapped = true;
    }
    if (!swapped) break;
  }

  r.parts.assign(static_cast<size_t>(k), {});
  for (int64_t i = 0; i < n; ++i) r.parts[part[i]].push_back(static_cast<int>(i));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      const double w = Edge(a, n, i, j);
      r.total_weight += w;
      if (part[i] == part[j]) r.internal_weight += w;
    }
  }
  return r;
}

}  // namespace moe
