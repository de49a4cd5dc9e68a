#pragma once
// Ablation panel: disable the selected experts (re-route, drop, or drop and renormalize), every
// token's r best experts, or set top-k = k, run the model over the open trace's documents (the
// selected domain's, or all) against the unmodified model, and show ΔNLL per domain with its
// confidence interval, KL and top-1 agreement; below, the predictions whose top-1 changed (a
// row selects its token in the token map) and the routing diff: at the selected layer, an
// expert x expert matrix of how many tokens moved from which expert to which, and the tokens
// moved per layer (a row selects the layer). The run is the shell's background job
// (gui/model/ablation_job.h), reached through JobHooks; this view only draws its status and
// results.
#include <functional>

#include "gui/model/ablation_data.h"
#include "gui/views/colors.h"
#include "gui/views/heatmap.h"
#include "gui/views/view.h"

namespace moe::studio {

class AblationView : public View {
 public:
  // How the panel reaches the job. Unset (e.g. --export-views) the panel cannot run ablations.
  struct JobHooks {
    std::function<void(const AblationRequest&)> run;
    std::function<void()> cancel;
    std::function<AblationStatus()> status;
  };

  const char* Name() const override { return "ablation"; }
  const char* Title() const override { return "Ablation"; }
  void Draw(const StudioData& data, Selection& selection) override;
  // Every policy of the last run: policy,kind,domain,tokens,base_nll,policy_nll,delta_nll,
  // ci_low,ci_high,kl,agreement.
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;
  // "changes": policy,document,source_id,position,token_id,token,target_id,target,before_id,
  // before,after_id,after,delta_nll;
  // "routing": policy,layer,from,to,tokens (from/to an expert or "none"), every layer and
  // non-zero cell.
  std::vector<std::string> ExtraCsvTables() const override { return {"changes", "routing"}; }
  void WriteExtraCsv(const std::string& table, const StudioData& data, const Selection& selection,
                     std::ostream& out) const override;

  void set_job(JobHooks hooks) { job_ = std::move(hooks); }
  // The request the controls describe for this data and selection (what Run sends).
  AblationRequest MakeRequest(const StudioData& data, const Selection& selection) const;
  void set_target(AblationRequest::Target target) { target_ = target; }
  // Domain rows of the results table drawn in the last frame (domains and "all").
  int drawn_rows() const { return drawn_rows_; }
  // Changed-prediction rows drawn in the last frame (the visible ones), and per-layer rows of
  // the routing diff.
  int drawn_change_rows() const { return drawn_change_rows_; }
  int drawn_layer_rows() const { return drawn_layer_rows_; }
  // The routing-diff matrix of the last frame: where its (E + 1) x (E + 1) cells were drawn, its
  // layer and scale (sequential from 0 to the layer's largest count; impossible cells NaN).
  const HeatmapHit& last_routing_grid() const { return routing_grid_; }
  int routing_layer() const { return routing_layer_; }
  static ColorScale RoutingScale(const AblationPolicyResult& p, int layer);
  // The count of cell (from, to) as drawn: NaN on the diagonal (no move stays).
  static double RoutingCell(const AblationPolicyResult& p, int layer, int from, int to);

 private:
  void DrawControls(const StudioData& d, const Selection& sel, const AblationStatus& status);
  void DrawResults(const AblationOutcome& outcome, Selection& sel);
  // Parts of DrawResults: the headline with the policy chooser (returns the policy shown this
  // frame), and the per-domain table (false when ImGui skipped it, and the rest with it).
  const AblationPolicyResult& DrawPolicyChoice(const AblationOutcome& outcome);
  bool DrawDeltaTable(const AblationOutcome& outcome, const AblationPolicyResult& p);
  void DrawChanges(const AblationPolicyResult& p, Selection& sel);
  void DrawRoutingDiff(const AblationPolicyResult& p, Selection& sel);
  const AblationPolicyResult* ShownPolicy() const;

  JobHooks job_;
  AblationRequest::Target target_ = AblationRequest::Target::kExperts;
  int mode_ = 0;  // DisableModeLabel(mode_): the semantics of the disabled experts
  int r_ = 1, k_ = 1;
  int policy_ = -1;  // result shown; -1 = the last policy
  int drawn_rows_ = 0, drawn_change_rows_ = 0, drawn_layer_rows_ = 0;
  HeatmapHit routing_grid_;
  int routing_layer_ = -1;
  std::shared_ptr<const AblationOutcome> shown_;  // the outcome the CSV writes
};

}  // namespace moe::studio
