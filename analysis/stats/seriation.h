#pragma once
// Seriation: an order of n items that puts similar items next to each other, so that blocks of
// experts that route together show up as blocks along the diagonal of a co-activation or
// transition heatmap (moescope-studio's co-activation view). Deterministic: the same matrix
// always gives the same order, so screenshots and exports are reproducible.
#include <span>
#include <vector>

namespace moe {

// Greedy nearest-neighbour chain over a similarity matrix [n, n] (row-major, larger = more
// alike; only the upper triangle of a symmetric matrix matters, and NaN counts as least alike):
// the chain starts at the most similar pair and grows at whichever end has the more similar
// unplaced item. Ties go to the lower index. Returns a permutation of [0, n).
std::vector<int> SeriationOrder(std::span<const double> similarity, int n);

// Cosine similarity of the rows of `matrix` [rows, cols] (row-major): [rows, rows]; 0 where a
// row is all zeros (NaN entries count as 0). With the transposed view (by_columns) the
// similarity of the columns, [cols, cols].
std::vector<double> CosineSimilarity(std::span<const double> matrix, int rows, int cols,
                                     bool by_columns = false);

}  // namespace moe
