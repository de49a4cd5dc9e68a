#pragma once
// Balanced partition of a neuron co-activation graph (docs/llama-moe-spec.md §5.1
// "Co-activation graph", MoEfication): neurons that fire together should land in the same
// expert. Upstream writes the graph for METIS and moves surplus neurons of oversized parts at
// random; here the partition is computed directly with exact part sizes:
//
//   seeds:   the first uniformly at random (SplitMix64 stream 5 of the layer), each next one the
//            neuron least connected to the seeds so far (ties: lower index)
//   growth:  parts take turns (in index order, skipping full ones) adding the unassigned neuron
//            with the largest total edge weight to the part (ties: lower index)
//   refine:  passes over the neurons in index order; each neuron is swapped with the partner in
//            another part that most increases the weight inside parts, while that gain is
//            positive; stop after a pass without swaps (or max_passes)
//
// The objective (total weight of edges inside parts) only grows, and the result is deterministic.
#include <cstdint>
#include <vector>

namespace moe {

struct GraphPartitionResult {
  std::vector<std::vector<int>> parts;  // [E] ascending neuron indices
  double internal_weight = 0;           // sum of A[i][j] over i < j in the same part
  double total_weight = 0;              // sum of A[i][j] over i < j
  int passes = 0;                       // refinement passes run
};

// a: symmetric [n, n] edge weights (the diagonal is ignored). sizes: part sizes (sum = n).
GraphPartitionResult BalancedGraphPartition(const std::vector<float>& a, int64_t n,
                                            const std::vector<int>& sizes, uint64_t seed, int layer,
                                            int max_passes = 50);

}  // namespace moe
