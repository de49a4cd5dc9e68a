#pragma once
// Specialization: at the selected layer, a domain x expert heatmap of domain-specialization lift
// (OLMoE DS over its uniform value K/E, or first choice over 1/E), diverging around 1, with a dot
// where the permutation test's p-value is below alpha; and the tokens most often routed to the
// selected expert (vocabulary specialization).
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
  // The lift metric shown ("domain_spec_lift_topk" or "_top1") and its p-value metric.
  const char* LiftMetric() const { return top1_ ? "domain_spec_lift_top1" : "domain_spec_lift_topk"; }
  const char* PMetric() const { return top1_ ? "domain_spec_perm_p_top1" : "domain_spec_perm_p_topk"; }
  ColorScale ScaleFor(const ExpertMetric& lift) const;
  const HeatmapHit& last_heatmap() const { return last_; }

 private:
  void DrawTopTokens(const StudioData& data, const Selection& sel) const;

  bool top1_ = false;
  float alpha_ = 0.05f;
  HeatmapHit last_;
};

}  // namespace moe::studio
