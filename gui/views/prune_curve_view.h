#pragma once
// Pruning curve (`moescope prune-curve`, docs/pruning.md): ΔNLL against the share of experts
// removed, one line per importance score with its interval band, and the random control (random
// sets of as many experts per layer) as a grey dashed line through the mean of its draws, each
// draw with its interval; per domain or over all documents. Hover and the table below give each
// set's comparison with its controls (difference with interval, p, Benjamini-Hochberg q).
#include "gui/views/plot.h"
#include "gui/views/view.h"

namespace moe::studio {

class PruneCurveView : public View {
 public:
  const char* Name() const override { return "prune_curve"; }
  const char* Title() const override { return "Pruning curve"; }
  bool HasData(const StudioData& data) const override { return !data.results.prune.empty(); }
  void Draw(const StudioData& data, Selection& selection) override;
  // Every set and control, every domain: set,kind,score,ratio,domain,tokens,delta_nll,ci_low,
  // ci_high,random_delta_nll,difference,difference_ci_low,difference_ci_high,p_value,q_value
  // (kind "score" or "random"; the comparison columns empty for controls).
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_domain_row(int row) { domain_row_ = row; }
  // Last frame: the plot, its series drawn (scores, then the control) and markers drawn.
  const PlotFrame& last_frame() const { return frame_; }
  int drawn_series() const { return drawn_series_; }
  int drawn_markers() const { return drawn_markers_; }

 private:
  void DrawPlot(const PruneCurveData& d);
  void DrawTable(const PruneCurveData& d);
  int domain_row_ = -1;  // -1: all documents (row M)
  PlotFrame frame_;
  int drawn_series_ = 0, drawn_markers_ = 0;
};

}  // namespace moe::studio
