#pragma once
// Expert-cache hit rates (`moescope cache-sim`, docs/cache-sim.md): at the selected layer, the
// hit rate against the cache size (experts kept per layer), one line per policy of the file
// (LRU, LFU, Belady's offline optimum dashed, and whatever other policies the file names), with
// intervals over documents; per domain or over all documents. Hover: the hit rate with its
// interval, misses and bytes moved per token, and the policy's further measures.
#include "gui/views/plot.h"
#include "gui/views/view.h"

namespace moe::studio {

class CacheCurveView : public View {
 public:
  const char* Name() const override { return "cache_curves"; }
  const char* Title() const override { return "Cache hit rates"; }
  bool HasData(const StudioData& data) const override { return !data.results.cache.empty(); }
  void Draw(const StudioData& data, Selection& selection) override;
  // Every row of the file: layer,domain,policy,capacity,hit_rate,ci_low,ci_high,
  // misses_per_token,bytes_per_token,requests,tokens,docs, then the file's further fields.
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_domain_row(int row) { domain_row_ = row; }
  const PlotFrame& last_frame() const { return frame_; }
  int shown_layer() const { return layer_; }
  int drawn_series() const { return drawn_series_; }
  int drawn_markers() const { return drawn_markers_; }

 private:
  int domain_row_ = -1;  // -1: all documents (row M)
  int layer_ = 0;
  PlotFrame frame_;
  int drawn_series_ = 0, drawn_markers_ = 0;
};

}  // namespace moe::studio
