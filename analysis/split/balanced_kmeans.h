#pragma once
// Balanced k-means (docs/llama-moe-spec.md §5.1 "Independent_Clustering"): points are the
// L2-normalised neuron rows of one FFN matrix, clusters have fixed sizes (upstream:
// k_means_constrained with size_min = size_max = I / E, max_iter 500, metric l2). Deterministic
// for a given seed.
//
//   init:   k-means++ on squared Euclidean distance, draws from SplitMix64 stream 4 of the layer
//   assign: every (point, centre) pair by increasing distance (ties: lower point, then lower
//           centre), a point taking the first centre that still has room; then, for every pair
//           of clusters, the swaps that lower the total distance (best pairs first), until no
//           swap helps
//   update: centres = member means; stop when the assignment no longer changes or after
//           max_iterations.
#include <cstdint>
#include <vector>

namespace moe {

struct BalancedKMeansResult {
  std::vector<int> labels;  // [n] cluster of each point
  double inertia = 0;       // sum of squared distances to the assigned centres
  int iterations = 0;
};

// points: [n, dim] row-major. sizes: the size of each cluster (sum = n).
BalancedKMeansResult BalancedKMeans(const std::vector<float>& points, int64_t n, int64_t dim,
                                    const std::vector<int>& sizes, uint64_t seed, int layer,
                                    int max_iterations = 500);

// Rows scaled to unit L2 norm (all-zero rows stay zero), as sklearn's Normalizer.
void NormalizeRows(std::vector<float>& rows, int64_t n, int64_t dim);

}  // namespace moe
