#include "analysis/split/balanced_kmeans.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "analysis/split/split_random.h"
#include "core/error.h"

namespace moe {
namespace {

// Squared distances [n, k] of every point to every centre, in double.
std::vector<double> Distances(const std::vector<float>& points, int64_t n, int64_t dim,
                              const std::vector<double>& centres, int k) {
  std::vector<double> d(static_cast<size_t>(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* p = points.data() + i * dim;
    for (int c = 0; c < k; ++c) {
      const double* q = centres.data() + static_cast<int64_t>(c) * dim;
      double s = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const double diff = static_cast<double>(p[j]) - q[j];
        s += diff * diff;
      }
      d[static_cast<size_t>(i * k + c)] = s;
    }
  }
  return d;
}

// k-means++: the first centre uniformly, each next one with probability proportional to the
// squared distance to the nearest centre chosen so far.
std::vector<double> InitialCentres(const std::vector<float>& points, int64_t n, int64_t dim, int k,
                                   uint64_t seed, int layer) {
  SplitMix64 rng(seed, SplitStream::kClustering, static_cast<uint64_t>(layer));
  std::vector<double> centres(static_cast<size_t>(k * dim));
  auto set_centre = [&](int c, int64_t i) {
    for (int64_t j = 0; j < dim; ++j)
      centres[static_cast<size_t>(c * dim + j)] = points[i * dim + j];
  };
  set_centre(0, static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(n)));
  std::vector<double> nearest(static_cast<size_t>(n), INFINITY);
  for (int c = 1; c < k; ++c) {
    const double* q = centres.data() + static_cast<int64_t>(c - 1) * dim;
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const double diff = static_cast<double>(points[i * dim + j]) - q[j];
        s += diff * diff;
      }
      nearest[i] = std::min(nearest[i], s);
      total += nearest[i];
    }
    int64_t pick = 0;
    if (total > 0) {
      const double target = rng.Uniform() * total;
      double run = 0;
      pick = n - 1;
      for (int64_t i = 0; i < n; ++i) {
        run += nearest[i];
        if (run > target) {
          pick = i;
          break;
        }
      }
    } else {
      pick = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(n));
    }
    set_centre(c, pick);
  }
  return centres;
}

// Greedy capacity-constrained assignment by increasing distance.
std::vector<int> GreedyAssign(const std::vector<double>& d, int64_t n, int k,
                              const std::vector<int>& sizes) {
  std::vector<int64_t> order(static_cast<size_t>(n * k));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
  std::vector<int> labels(static_cast<size_t>(n), -1);
  std::vector<int> room(sizes);
  int64_t left = n;
  for (int64_t pair : order) {
    const int64_t i = pair / k;
    const int c = static_cast<int>(pair % k);
    if (labels[i] >= 0 || room[c] == 0) continue;
    labels[i] = c;
    --room[c];
    if (--left == 0) break;
  }
  return labels;
}

// Pairwise swaps between clusters that lower the total distance; sizes are kept.
void SwapRefine(const std::vector<double>& d, int64_t n, int k, std::vector<int>& labels) {
  for (int round = 0; round < 100; ++round) {
    bool changed = false;
    for (int a = 0; a < k; ++a) {
      for (int b = a + 1; b < k; ++b) {
        // gain of moving each member of a to b, and each member of b to a (negative = better)
        std::vector<std::pair<double, int64_t>> from_a, from_b;
        for (int64_t i = 0; i < n; ++i) {
          if (labels[i] == a) from_a.push_back({d[i * k + b] - d[i * k + a], i});
          if (labels[i] == b) from_b.push_back({d[i * k + a] - d[i * k + b], i});
        }
        std::sort(from_a.begin(), from_a.end());
        std::sort(from_b.begin(), from_b.end());
        for (size_t m = 0; m < std::min(from_a.size(), from_b.size()); ++m) {
          if (from_a[m].first + from_b[m].first >= -1e-12) break;
          labels[from_a[m].second] = b;
          labels[from_b[m].second] = a;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
}

}  // namespace

void NormalizeRows(std::vector<float>& rows, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    float* r = rows.data() + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) s += static_cast<double>(r[j]) * r[j];
    if (s == 0) continue;
    const double inv = 1.0 / std::sqrt(s);
    for (int64_t j = 0; j < dim; ++j) r[j] = static_cast<float>(r[j] * inv);
  }
}

BalancedKMeansResult BalancedKMeans(const std::vector<float>& points, int64_t n, int64_t dim,
                                    const std::vector<int>& sizes, uint64_t seed, int layer,
                                    int max_iterations) {
  const int k = static_cast<int>(sizes.size());
  if (k < 1 || std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != n)
    Fail("balanced k-means", "cluster sizes do not add up to the number of points");
  if (points.size() != static_cast<size_t>(n * dim))
    Fail("balanced k-means", "points do not hold n x dim values");

  std::vector<double> centres = InitialCentres(points, n, dim, k, seed, layer);
  BalancedKMeansResult r;
  for (r.iterations = 1; r.iterations <= max_iterations; ++r.iterations) {
    const std::vector<double> d = Distances(points, n, dim, centres, k);
    std::vector<int> labels = GreedyAssign(d, n, k, sizes);
    SwapRefine(d, n, k, labels);
    const bool same = labels == r.labels;
    r.labels = std::move(labels);
    r.inertia = 0;
    for (int64_t i = 0; i < n; ++i) r.inertia += d[i * k + r.labels[i]];
    if (same) break;
    std::fill(centres.begin(), centres.end(), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < dim; ++j)
        centres[static_cast<size_t>(r.labels[i] * dim + j)] += points[i * dim + j];
    for (int c = 0; c < k; ++c)
      for (int64_t j = 0; j < dim; ++j) centres[static_cast<size_t>(c * dim + j)] /= sizes[c];
  }
  r.iterations = std::min(r.iterations, max_iterations);
  return r;
}

}  // namespace moe
