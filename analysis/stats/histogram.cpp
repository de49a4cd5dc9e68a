#include "analysis/stats/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moe {

int LogGrid::Bin(double value) const {
  if (!(value >= low)) return 0;  // NaN and below the grid
  if (value >= high) return bins + 1;
  const double position = std::log(value / low) / std::log(high / low) * bins;
  return 1 + std::clamp(static_cast<int>(position), 0, bins - 1);
}

double LogGrid::LowerEdge(int bin) const {
  if (bin <= 0) return 0;
  return low * std::pow(high / low, static_cast<double>(bin - 1) / bins);
}

double LogGrid::UpperEdge(int bin) const {
  if (bin >= bins + 1) return std::numeric_limits<double>::infinity();
  return LowerEdge(bin + 1);
}

QuantileHistogram QuantileBins(const std::vector<int64_t>& fine, int rows, int layers,
                               const LogGrid& grid, int bins, int reference_row) {
  const int F = grid.size();
  QuantileHistogram h;
  std::vector<std::vector<int>> starts(static_cast<size_t>(layers));  // first fine bin of each
  for (int l = 0; l < layers; ++l) {
    const int64_t* ref = fine.data() + (static_cast<size_t>(reference_row) * layers + l) * F;
    int64_t total = 0;
    int first = F, last = -1;  // the non-empty fine range
    for (int f = 0; f < F; ++f) {
      total += ref[f];
      if (ref[f] > 0) {
        first = std::min(first, f);
        last = f;
      }
    }
    std::vector<int>& s = starts[static_cast<size_t>(l)];
    if (total == 0) {
      s = {0, F};  // one empty bin over the whole grid
    } else {
      s.push_back(first);
      int64_t running = 0;
      int next = 1;
      for (int f = first; f <= last; ++f) {
        running += ref[f];
        // Close a bin after fine bin f once the count reaches the next quantile.
        while (next < bins && running * bins >= total * next) {
          if (f + 1 <= last && s.back() != f + 1) s.push_back(f + 1);
          ++next;
        }
      }
      s.push_back(last + 1);
    }
    h.bins = std::max(h.bins, static_cast<int>(s.size()) - 1);
  }
  h.layer_bins.assign(static_cast<size_t>(layers), 0);
  h.edges.assign(static_cast<size_t>(layers) * (h.bins + 1),
                 std::numeric_limits<double>::quiet_NaN());
  h.counts.assign(static_cast<size_t>(rows) * layers * h.bins, 0);
  for (int l = 0; l < layers; ++l) {
    const std::vector<int>& s = starts[static_cast<size_t>(l)];
    const int n = static_cast<int>(s.size()) - 1;
    h.layer_bins[static_cast<size_t>(l)] = n;
    double* edges = h.edges.data() + static_cast<size_t>(l) * (h.bins + 1);
    for (int b = 0; b < n; ++b) edges[b] = grid.LowerEdge(s[static_cast<size_t>(b)]);
    edges[n] = grid.UpperEdge(s[static_cast<size_t>(n)] - 1);
    for (int r = 0; r < rows; ++r) {
      const int64_t* row = fine.data() + (static_cast<size_t>(r) * layers + l) * F;
      int64_t* out = h.counts.data() + (static_cast<size_t>(r) * layers + l) * h.bins;
      for (int b = 0; b < n; ++b)
        for (int f = s[static_cast<size_t>(b)]; f < s[static_cast<size_t>(b) + 1]; ++f)
          out[b] += row[f];
      // Other rows may hold values outside the reference row's range: first and last bin.
      for (int f = 0; f < s[0]; ++f) out[0] += row[f];
      for (int f = s[static_cast<size_t>(n)]; f < F; ++f) out[n - 1] += row[f];
    }
  }
  return h;
}

}  // namespace moe
