#pragma once
// Route replay and audit (`moescope replay`, docs/route-replay.md): per MoE layer, bars of set
// agreement and top-1 agreement between the two routings (A the reference, B the subject) with
// their intervals over documents; the header gives ΔNLL = NLL(B) - NLL(A) with its interval and
// the next-token agreement, over all documents or the chosen domain. A report of several audits
// (imported routes, fp32 vs bf16) has a chooser.
#include "gui/views/plot.h"
#include "gui/views/view.h"

namespace moe::studio {

class ReplayView : public View {
 public:
  const char* Name() const override { return "replay"; }
  const char* Title() const override { return "Route replay"; }
  bool HasData(const StudioData& data) const override { return !data.results.replay.empty(); }
  void Draw(const StudioData& data, Selection& selection) override;
  // Every audit: audit,layer,domain,metric,value,ci_low,ci_high,tokens (per-layer agreements,
  // then per-domain delta_nll, next_token_agreement, reference_nll, subject_nll with layer -1).
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_audit(int audit) { audit_ = audit; }
  const PlotFrame& last_frame() const { return frame_; }
  int drawn_bars() const { return drawn_bars_; }

 private:
  int audit_ = 0;
  int domain_row_ = -1;  // -1: all documents (row M)
  PlotFrame frame_;
  int drawn_bars_ = 0;
};

}  // namespace moe::studio
