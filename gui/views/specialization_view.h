#pragma once
// Specialization: at the selected layer, a domain x expert heatmap of domain-specialization lift
// (OLMoE DS over its uniform value K/E, first choice over 1/E, or the token-controlled lift:
// the domain's count over what its tokens get elsewhere), diverging around 1 from the smallest
// to the largest lift shown, with a dot where the cell is a discovery at the FDR slider's level
// (Benjamini–Hochberg q of the lift's test); and the tokens most often routed to the selected
// expert (vocabulary specialization).
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

  // Which lift the heatmap shows.
  enum class Lift { kTopk, kTop1, kTokenControlled };
  void set_lift(Lift lift) { lift_ = lift; }
  double alpha() const { return alpha_; }
  // The lift metric shown, the p-value of its test and its DS metric.
  Metric LiftMetric() const {
    return lift_ == Lift::kTop1              ? Metric::kDomainSpecLiftTop1
           : lift_ == Lift::kTokenControlled ? Metric::kDomainSpecLiftToken
                                             : Metric::kDomainSpecLiftTopk;
  }
  Metric PMetric() const {
    return lift_ == Lift::kTop1              ? Metric::kDomainSpecPermPTop1
           : lift_ == Lift::kTokenControlled ? Metric::kDomainSpecTokenP
                                             : Metric::kDomainSpecPermPTopk;
  }
  Metric DsMetric() const {
    return lift_ == Lift::kTop1 ? Metric::kDomainSpecTop1 : Metric::kDomainSpecTopk;
  }
  // The colour scale of the cells shown at `layer` (the domain rows): two slopes from their
  // smallest lift through 1 (white, no specialization) to their largest, so the legend spans
  // the lifts shown (at most E/K, or E for first choice) and the extreme cells get the end
  // colours.
  static ColorScale ScaleFor(const ExpertMetric& lift, int layer);
  const HeatmapHit& last_heatmap() const { return last_; }
  const ColorScale& last_legend() const { return legend_; }  // the scale of the last legend

 private:
  void DrawTopTokens(const StudioData& data, const Selection& sel) const;

  Lift lift_ = Lift::kTopk;
  float alpha_ = 0.05f;
  HeatmapHit last_;
  ColorScale legend_;
};

}  // namespace moe::studio
