#pragma once
// Histograms whose bins come from the data (docs/stats-format.md, "Histograms"). Router margins
// and entropies of one model can all sit within a tiny range (the bundled model's top-k margins
// are below 0.1 in layers 2-5, its normalized entropies above 0.99), so fixed bins over [0, 4)
// or [0, 1] put everything in one bin. Values are counted on a fine log-spaced grid, which is
// mergeable like every other count; the report then joins neighbouring fine bins into bins of
// about equal counts (quantile bins) per layer, from all domains together, and records the
// edges it used.
#include <cstdint>
#include <vector>

namespace moe {

// Fine bin 0 holds values below `low` (zero included); bins 1..bins are log-spaced over
// [low, high); bin bins + 1 holds values >= high.
struct LogGrid {
  double low, high;
  int bins;
  int size() const { return bins + 2; }
  int Bin(double value) const;
  double LowerEdge(int bin) const;  // 0 for bin 0
  double UpperEdge(int bin) const;  // +inf for the last bin
};

// The router's top-k boundary margin z_(k) - z_(k+1): 1e-6 .. 1e3, 30 bins per decade.
inline constexpr LogGrid kMarginGrid{1e-6, 1e3, 270};
// The entropy deficit 1 - H / log E (0 = uniform over all experts): 1e-8 .. 1, 30 per decade.
inline constexpr LogGrid kEntropyDeficitGrid{1e-8, 1.0, 240};

// Quantile bins of fine counts [rows, L, grid.size()]: per layer, edges at fine-bin boundaries
// where the reference row's cumulative count first reaches j / bins of its total (ties merge
// bins, so a layer may have fewer); then every row counted in those bins.
struct QuantileHistogram {
  int bins = 0;                 // the most bins of any layer
  std::vector<int> layer_bins;  // [L] bins of each layer
  std::vector<double> edges;    // [L, bins + 1] lower edges then the last upper edge; NaN pads
  std::vector<int64_t> counts;  // [rows, L, bins]; 0 pads
};
QuantileHistogram QuantileBins(const std::vector<int64_t>& fine, int rows, int layers,
                               const LogGrid& grid, int bins, int reference_row);

}  // namespace moe
