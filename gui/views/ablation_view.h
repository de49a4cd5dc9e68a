#pragma once
// Ablation panel: disable the selected experts (re-route, drop, or drop and renormalize), every
// token's r best experts, or set top-k = k, run the model over the open trace's documents (the
// selected domain's, or all) against the unmodified model, and show ΔNLL per domain with its
// confidence interval, KL and top-1 agreement. The run is the shell's background job
// (gui/model/ablation_job.h), reached through JobHooks; this view only draws its status and
// results.
#include <functional>

#include "gui/model/ablation_data.h"
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

  void set_job(JobHooks hooks) { job_ = std::move(hooks); }
  // The request the controls describe for this data and selection (what Run sends).
  AblationRequest MakeRequest(const StudioData& data, const Selection& selection) const;
  void set_target(AblationRequest::Target target) { target_ = target; }
  // Domain rows of the results table drawn in the last frame (domains and "all").
  int drawn_rows() const { return drawn_rows_; }

 private:
  void DrawControls(const StudioData& d, const Selection& sel, const AblationStatus& status);
  void DrawResults(const AblationOutcome& outcome);

  JobHooks job_;
  AblationRequest::Target target_ = AblationRequest::Target::kExperts;
  int mode_ = 0;  // index into kModes
  int r_ = 1, k_ = 1;
  int policy_ = -1;  // result shown; -1 = the last policy
  int drawn_rows_ = 0;
  std::shared_ptr<const AblationOutcome> shown_;  // the outcome the CSV writes
};

}  // namespace moe::studio
