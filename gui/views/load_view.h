#pragma once
// Expert load: a layer x expert heatmap of one load metric (relative load by default) for the
// selected domain facet, or one small heatmap per domain side by side; a colour legend with the
// uniform baseline marked; bars of the selected layer with confidence intervals. Hover shows the
// value, interval and baseline; a click selects (layer, expert), Ctrl+click adds experts.
#include <string>
#include <vector>

#include "gui/views/colors.h"
#include "gui/views/domains.h"
#include "gui/views/heatmap.h"
#include "gui/views/view.h"

namespace moe::studio {

class LoadView : public View {
 public:
  const char* Name() const override { return "expert_load"; }
  const char* Title() const override { return "Expert load"; }
  void Draw(const StudioData& data, Selection& selection) override;
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  // The load metrics offered, in menu order (those the data has).
  static const std::vector<Metric>& Metrics();
  void set_metric(Metric metric) { metric_ = metric; }
  Metric metric() const { return metric_; }
  void set_diverging(bool on) { diverging_ = on; }
  void set_facets(bool on) { facets_ = on; }

  // The colour scale cells are drawn with for the given domain rows (-1 = all domains).
  ColorScale ScaleFor(const ExpertMetric& metric, const std::vector<int>& domain_rows) const;
  // Where the main heatmap's cells were drawn in the last frame (for tests and exports).
  const HeatmapHit& last_heatmap() const { return last_; }

 private:
  void DrawControls(const StudioData& data, Selection& sel);
  void DrawTooltip(const StudioData& data, const ExpertMetric& m, int row, int layer,
                   int expert) const;
  void DrawLayerBars(const StudioData& data, const ExpertMetric& m, int row, Selection& sel);

  Metric metric_ = Metric::kRelativeLoad;
  bool diverging_ = true;  // diverging around the baseline when the metric has one
  bool facets_ = false;    // one heatmap per domain
  HeatmapHit last_;
};

}  // namespace moe::studio
