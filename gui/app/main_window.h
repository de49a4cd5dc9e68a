#pragma once
// moescope-studio's main window: menus, docks (one ImGui view each), status bar with the open
// model and trace, a progress bar with cancel for the background job that loads a trace, error
// dialogs for every failure, recent files and window layout in QSettings, light/dark following
// the system palette. main_window.cpp builds the window and follows the selection;
// main_window_menus.cpp holds the menus, main_window_loading.cpp the opening of models and traces.
#include <QMainWindow>
#include <QPointer>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "gui/app/studio_state.h"
#include "gui/model/results_data.h"
#include "gui/views/view.h"

class QAction;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QTimer;

namespace moe {
struct LoadedModel;
class Tokenizer;
}  // namespace moe

namespace moe::studio {

class AblationJob;
class TraceWatch;
class PromptJob;
class ImGuiWidget;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  MainWindow();
  ~MainWindow() override;

  // Starts loading a trace in the background; errors open a dialog.
  void OpenTrace(const QString& path);
  // Loads the open trace again in the background, keeping the selection: a trace still being
  // written (SWMR) shows what was committed since. Auto-refresh does this every
  // kRefreshSeconds while the trace is incomplete and has grown (File > Auto-refresh).
  void RefreshTrace();
  static constexpr int kRefreshMilliseconds = 2000;
  // No trace given: builds (or reuses) the bundled model's trace of the bundled sample corpus in
  // the user's cache folder (gui/model/sample_trace.h) in the background, with the status bar's
  // progress and Cancel, then opens it (traceLoadFinished reports the end). Returns false, doing
  // nothing, when no model is open.
  bool OpenBundledTrace();
  // Reads an export of prune-curve, cache-sim or replay (gui/model/results_loader.h) into the
  // views that show it; it stays shown when traces are opened. Errors open a dialog naming the
  // file and field. Returns whether it read.
  bool OpenResults(const QString& path);
  // Loads a model folder (config.json, checkpoint, tokenizer.model); errors open a dialog.
  // Returns whether it loaded.
  bool OpenModel(const QString& dir, bool quiet_errors = false);
  StudioState& state() { return state_; }
  bool busy() const { return job_running_; }

  // Scripted runs (--screenshot, the app test): error dialogs open without blocking and are
  // counted, and each is also printed to stderr.
  void SetScripted(bool on) { scripted_ = on; }
  int errors() const { return errors_; }
  // A selection given on the command line; a domain name that the trace lacks is an error.
  void ApplySelection(int layer, const std::vector<int>& experts, int64_t document,
                      const QString& domain);

 Q_SIGNALS:
  // The background load of OpenTrace ended (ok: the trace is now shown).
  void traceLoadFinished(bool ok);

 protected:
  void closeEvent(QCloseEvent* e) override;
  void changeEvent(QEvent* e) override;

 private:
  // OpenTrace and RefreshTrace: a refresh keeps the selection and the recent files as they are.
  void LoadTrace(const QString& path, bool refresh);
  // Follows the shown trace while it is incomplete (gui/model/trace_watch.h); stops otherwise.
  void WatchTrace();
  // The auto-refresh timer: reloads when the watched trace has grown.
  void PollTrace();
  void BuildMenus();
  void BuildDocks();
  void BuildStatusBar();
  void RebuildRecentMenu();
  void AddRecent(const QString& path);
  void UpdateStatus();
  void Error(const QString& title, const QString& message);
  void OnSelectionChanged();
  void ExportViewsDialog();
  void CancelJob();
  // Wakes widget `w` every `milliseconds` while `busy()` holds, and once after.
  void WakeWhile(ImGuiWidget* w, int milliseconds, std::function<bool()> busy);
  // Connects the ablation panel to its background job; a timer redraws it while the job runs.
  void ConnectAblation();
  // Connects the live prompt view to its job; a timer redraws it while an edit waits for its
  // debounce or a run is in flight.
  void ConnectPrompt();
  // Shows the status bar's progress and Cancel for a background job.
  void ShowJobProgress(const QString& message);
  // Its inverse, when the job has ended (finished, failed or cancelled).
  void HideJobProgress();
  void StepLayer(int delta);
  void StepDocument(int delta);
  bool DarkPalette() const;

  // The results opened with OpenResults, laid over those found next to each trace opened.
  ResultsData opened_results_;
  bool opened_kind_[3] = {false, false, false};  // by ResultsKind

  StudioState state_;
  std::vector<std::unique_ptr<View>> views_;
  std::vector<ImGuiWidget*> widgets_;
  std::shared_ptr<LoadedModel> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;  // of the trace's data (model's or trace's own)
  QString trace_path_;

  std::unique_ptr<TraceWatch> watch_;  // while the shown trace is incomplete
  QTimer* refresh_timer_ = nullptr;
  QAction* auto_refresh_ = nullptr;

  QMenu* recent_menu_ = nullptr;
  QLabel* model_label_ = nullptr;
  QLabel* trace_label_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QPushButton* cancel_ = nullptr;

  // The background load (hotspot's job tracker: a newer job makes older results stale).
  int job_id_ = 0;
  bool job_running_ = false;
  std::shared_ptr<std::atomic<bool>> cancel_flag_;
  std::unique_ptr<AblationJob> ablation_job_;
  std::unique_ptr<PromptJob> prompt_job_;

  bool scripted_ = false;
  int errors_ = 0;
};

}  // namespace moe::studio
