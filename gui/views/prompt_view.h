#pragma once
// Live prompt: type a prompt and see how the model routes it and what it predicts next. The
// prompt's tokens are drawn on boxes coloured by their first expert at the selected layer (the
// token map's colours); hovering a token lists its top-k experts and weights at every layer.
// Below, the top next-token predictions with their probabilities. A layer x expert grid of
// checkboxes (or "disable selected", from the shared selection) switches experts off, with the
// chosen semantics (re-route, drop, drop and renormalize; core DisableMode); a click on a token
// picks it, and its experts at the selected layer can be forced (core ForcedRoute). The prompt
// is run again at once with that policy, and the predictions of the unmodified and the
// modified model are shown side by side. Runs go to the shell's background job
// (gui/model/prompt_job.h) through JobHooks; edits are sent once typing pauses (debounce) or on
// Enter. The view works without a trace: it needs only a model.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gui/model/prompt_data.h"
#include "gui/views/view.h"

namespace moe::studio {

class PromptView : public View {
 public:
  struct JobHooks {
    std::function<void(const PromptRequest&)> run;
    std::function<PromptStatus()> status;
    std::function<std::string()> model_dir;  // the model to run; empty = none
  };

  // Seconds of no typing before an edit is run.
  static constexpr double kDebounceSeconds = 0.35;

  PromptView();
  const char* Name() const override { return "prompt"; }
  const char* Title() const override { return "Live prompt"; }
  void Draw(const StudioData& data, Selection& selection) override;
  // run,kind,index,text,id,layer,rank,expert,value: one row per token, layer and rank
  // (kind token, value = weight) and one per prediction (kind prediction, value = probability),
  // for the unmodified run ("base") and the run with experts disabled ("disabled").
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_job(JobHooks hooks) { job_ = std::move(hooks); }
  void set_text(const std::string& text);
  const std::string& text() const { return text_; }
  // Disabled (layer, expert) pairs, ascending; setting them sends a run.
  void set_disabled(std::vector<std::pair<int, int>> disabled);
  const std::vector<std::pair<int, int>>& disabled() const { return disabled_; }
  // Semantics of the disabled experts: "reroute", "drop" or "drop-renorm"; setting it sends a
  // run. An unknown name is ignored.
  void set_mode(const std::string& mode);
  std::string mode() const;
  // Forced routes (one per token and layer; a newer one replaces an older); setting them sends a
  // run.
  void set_forced(std::vector<PromptForcedRoute> forced);
  const std::vector<PromptForcedRoute>& forced() const { return forced_; }
  // The token a click picked for a forced route, or -1.
  int picked_token() const { return pick_token_; }
  // Whether the view needs frames without input: an edit waits for its debounce or a run is
  // in flight (the shell's timer wakes the widget while this holds).
  bool WantsFrames() const { return dirty_ || waiting_; }

  // What the last frame drew, for tests.
  int drawn_tokens() const { return drawn_tokens_; }
  int drawn_predictions() const { return drawn_predictions_; }
  // Top-1 expert of each drawn token box at the selected layer (its colour's expert).
  const std::vector<int>& drawn_top1() const { return drawn_top1_; }

 private:
  void Send(const std::string& model_dir);
  void DrawTokens(const PromptRun& run, const PromptRun* base, int layer);
  void DrawPredictions(const PromptOutcome& o);
  void DrawGrid(int layers, int experts, const Selection& sel);
  void DrawForced(const PromptRun& run, int layer);

  JobHooks job_;
  std::string text_;
  std::vector<char> buffer_;  // InputText's buffer (ImGui 1.86 without imgui_stdlib)
  std::vector<std::pair<int, int>> disabled_;
  int mode_ = 0;  // DisableModeLabel(mode_): the semantics of the disabled experts
  std::vector<PromptForcedRoute> forced_;
  int pick_token_ = -1;            // the token a click picked
  std::vector<int> pick_experts_;  // the experts chosen for it, in order
  bool dirty_ = true;              // text or experts changed since the last send
  bool waiting_ = false;           // a sent request has not come back yet
  bool send_now_ = true;           // skip the debounce (Enter, a checkbox, the first frame)
  double edited_at_ = 0;
  int64_t serial_ = 0;
  std::string sent_model_;
  std::shared_ptr<const PromptOutcome> shown_;
  int drawn_tokens_ = 0, drawn_predictions_ = 0;
  std::vector<int> drawn_top1_;
};

}  // namespace moe::studio
