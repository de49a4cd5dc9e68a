#pragma once
// Specialization: at the selected layer, a domain x expert heatmap of domain-specialization lift
// (OLMoE DS over its uniform value K/E, or first choice over 1/E), diverging around 1 from the
// smallest to the largest lift shown, with a dot where the permutation test's p-value is below
// alpha; and the tokens most often routed to the selected expert (vocabulary specialization).
#include "gui/views/colors.h"
#include "gui/views/heatmap.h"
#include "gui/views/view.h"

namespace moe::studio {

class SpecializationView : public View {
 public:
  const char* Name() const override { return "specialization"; }
  const char* Title() const override { return "Specialization"; }
  void Draw(const StudioData& data, Selection& selection) override;
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_top1(bool on) { top1_ = on; }
  double alpha() const { return alpha_; }
  // The lift metric shown (top-k or first choice), its p-value and its DS metric.
  Metric LiftMetric() const {
    return top1_ ? Metric::kDomainSpecLiftTop1 : Metric::kDomainSpecLiftTopk;
  }
  Metric PMetric() const {
    return top1_ ? Metric::kDomainSpecPermPTop1 : Metric::kDomainSpecPermPTopk;
  }
  Metric DsMetric() const { return top1_ ? Metric::kDomainSpecTop1 : Metric::kDomainSpecTopk; }
  // The colour scale of the cells shown at `layer` (the domain rows): two slopes from their
  // smallest lift through 1 (white, no specialization) to their largest, so the legend spans
  // the lifts shown (at most E/K, or E for first choice) and the extreme cells get the end
  // colours.
  static ColorScale ScaleFor(const ExpertMetric& lift, int layer);
  const HeatmapHit& last_heatmap() const { return last_; }
  const ColorScale& last_legend() const { return legend_; }  // the scale of the last legend

 private:
  void DrawTopTokens(const StudioData& data, const Selection& sel) const;

  bool top1_ = false;
  float alpha_ = 0.05f;
  HeatmapHit last_;
  ColorScale legend_;
};

}  // namespace moe::studio
