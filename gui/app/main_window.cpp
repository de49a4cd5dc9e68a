// MainWindow: building the window (docks, status bar, the panels' background jobs), the
// selection and the status line that follows it, and window events. The menus are in
// main_window_menus.cpp, opening models and traces in main_window_loading.cpp.
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStatusBar>
#include <QTimer>
#include <algorithm>
#include <iostream>

#include "core/model_loader.h"
#include "gui/app/imgui_widget.h"
#include "gui/app/main_window.h"
#include "gui/model/ablation_job.h"
#include "gui/model/prompt_job.h"
#include "gui/model/studio_loader.h"
#include "gui/model/trace_watch.h"
#include "gui/views/ablation_view.h"
#include "gui/views/prompt_view.h"

namespace moe::studio {

MainWindow::MainWindow() {
  setWindowTitle("moescope-studio");
  setDockNestingEnabled(true);
  views_ = MakeAllViews();
  BuildDocks();
  BuildMenus();
  BuildStatusBar();
  ConnectAblation();
  ConnectPrompt();
  refresh_timer_ = new QTimer(this);
  connect(refresh_timer_, &QTimer::timeout, this, [this] { PollTrace(); });
  connect(&state_, &StudioState::selectionChanged, this, [this] { OnSelectionChanged(); });
  QSettings settings;
  if (!restoreGeometry(settings.value("window/geometry").toByteArray())) resize(1600, 1000);
  if (!restoreState(settings.value("window/state").toByteArray())) {
    // First start: overview narrow on the left, the heatmaps wide on the right.
    QList<QDockWidget*> left, right, bottom;
    for (QDockWidget* d : findChildren<QDockWidget*>()) {
      const Qt::DockWidgetArea area = dockWidgetArea(d);
      if (area == Qt::LeftDockWidgetArea)
        left.push_back(d);
      else if (area == Qt::BottomDockWidgetArea)
        bottom.push_back(d);
      else
        right.push_back(d);
    }
    resizeDocks(left, QList<int>(left.size(), 340), Qt::Horizontal);
    resizeDocks(right, QList<int>(right.size(), 560), Qt::Horizontal);
    resizeDocks(bottom, QList<int>(bottom.size(), 320), Qt::Vertical);
  }
  UpdateStatus();
}

MainWindow::~MainWindow() {
  CancelJob();
  ablation_job_.reset();  // cancels and joins before the views go
  prompt_job_.reset();
}

void MainWindow::BuildDocks() {
  const bool dark = DarkPalette();
  // The token map is the central widget; the others dock around it.
  // The side columns run the full height; the bottom area (the ablation panel) stays under the
  // token map, so the heatmaps keep their room.
  setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
  QDockWidget* specialization = nullptr;
  QDockWidget* ablation = nullptr;
  for (auto& view : views_) {
    auto* w = new ImGuiWidget(view.get(), &state_, dark);
    widgets_.push_back(w);
    const QString name = QString::fromUtf8(view->Name());
    if (name == "token_map") {
      setCentralWidget(w);
      continue;
    }
    auto* dock = new QDockWidget(QString::fromUtf8(view->Title()), this);
    dock->setObjectName("dock_" + name);  // for saveState
    dock->setWidget(w);
    if (name == "overview") {
      addDockWidget(Qt::LeftDockWidgetArea, dock);
    } else if (name == "ablation") {
      addDockWidget(Qt::BottomDockWidgetArea, dock);  // a wide table under the token map
      ablation = dock;
    } else if ((name == "prompt" || name == "prune_curve" || name == "cache_curves" ||
                name == "replay") &&
               ablation != nullptr) {
      // Tabs beside the ablation panel: the prompt runs the model too; the result views of
      // prune-curve, cache-sim and replay are wide plots.
      tabifyDockWidget(ablation, dock);
      if (name == "prompt") dock->raise();
    } else if (name == "coactivation" && specialization != nullptr) {
      tabifyDockWidget(specialization, dock);  // square heatmaps share the specialization's room
      specialization->raise();
    } else {
      addDockWidget(Qt::RightDockWidgetArea, dock);
      if (name == "specialization") specialization = dock;
    }
  }
}

void MainWindow::BuildStatusBar() {
  model_label_ = new QLabel(this);
  trace_label_ = new QLabel(this);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  progress_->setMaximumWidth(200);
  progress_->setVisible(false);
  cancel_ = new QPushButton("Cancel", this);
  cancel_->setVisible(false);
  connect(cancel_, &QPushButton::clicked, this, [this] { CancelJob(); });
  statusBar()->addWidget(model_label_);
  statusBar()->addWidget(trace_label_, 1);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancel_);
}

void MainWindow::ConnectAblation() {
  ablation_job_ = std::make_unique<AblationJob>();
  for (ImGuiWidget* w : widgets_) {
    auto* panel = dynamic_cast<AblationView*>(w->view());
    if (panel == nullptr) continue;
    AblationJob* job = ablation_job_.get();
    panel->set_job({[job](const AblationRequest& r) { job->Start(r); }, [job] { job->Cancel(); },
                    [job] { return job->Status(); }});
    // Progress and the result arrive from the job's thread.
    WakeWhile(w, 150, [job] { return job->Status().running; });
  }
}

void MainWindow::ConnectPrompt() {
  prompt_job_ = std::make_unique<PromptJob>();
  for (ImGuiWidget* w : widgets_) {
    auto* panel = dynamic_cast<PromptView*>(w->view());
    if (panel == nullptr) continue;
    PromptJob* job = prompt_job_.get();
    panel->set_job({[job](const PromptRequest& r) { job->Start(r); },
                    [job] { return job->Status(); },
                    [this] { return model_ ? model_->dir.string() : std::string(); }});
    // The debounce and the job's result need frames without input.
    WakeWhile(w, 100, [panel] { return panel->WantsFrames(); });
  }
}

void MainWindow::WakeWhile(ImGuiWidget* w, int milliseconds, std::function<bool()> busy) {
  // Frames are drawn on input only; what a background job changes needs a poll. Once more after
  // `busy` ends, so its last state is drawn.
  auto* timer = new QTimer(w);
  auto was_busy = std::make_shared<bool>(false);
  connect(timer, &QTimer::timeout, w, [w, busy = std::move(busy), was_busy] {
    const bool now = busy();
    if (now || *was_busy) w->Wake();
    *was_busy = now;
  });
  timer->start(milliseconds);
}

bool MainWindow::DarkPalette() const {
  return QApplication::palette().color(QPalette::Window).lightness() < 128;
}

void MainWindow::UpdateStatus() {
  model_label_->setText(model_ ? "model: " + QString::fromStdString(model_->dir.string())
                               : "no model");
  const StudioData& d = state_.data();
  if (d.empty()) {
    trace_label_->setText("no trace");
  } else {
    const Selection& s = state_.selection();
    QString experts;
    for (int e : s.experts) experts += (experts.isEmpty() ? "" : ",") + QString::number(e);
    trace_label_->setText(
        QString("trace: %1 (%2 documents, %3 tokens%4)   layer %5%6   document %7")
            .arg(QString::fromStdString(d.trace.info.path))
            .arg(d.trace.documents)
            .arg(d.trace.tokens)
            .arg(d.trace.info.complete ? ""
                 : watch_              ? ", incomplete: auto-refresh on"
                                       : ", incomplete")
            .arg(s.layer)
            .arg(experts.isEmpty() ? QString() : "   experts " + experts)
            .arg(s.document));
  }
}

void MainWindow::Error(const QString& title, const QString& message) {
  ++errors_;
  if (!scripted_) {
    QMessageBox::critical(this, title, message);
    return;
  }
  std::cerr << "moescope-studio: " << title.toStdString() << ": " << message.toStdString() << "\n";
  auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

void MainWindow::ApplySelection(int layer, const std::vector<int>& experts, int64_t document,
                                const QString& domain) {
  const StudioData& d = state_.data();
  Selection& s = state_.selection();
  s.layer = std::clamp(layer, 0, std::max(0, d.trace.info.num_layers - 1));
  s.experts.clear();
  for (int e : experts)
    if (e >= 0 && e < d.trace.info.num_experts && !s.HasExpert(e)) s.ToggleExpert(e);
  s.document = document;
  if (!domain.isEmpty()) {
    const auto at = std::find(d.domains.begin(), d.domains.end(), domain.toStdString());
    if (at == d.domains.end())
      Error("Select domain", "The trace has no domain '" + domain + "'.");
    else
      s.domain = static_cast<int>(at - d.domains.begin());
  }
  state_.NotifySelectionEdited(nullptr);
}

void MainWindow::OnSelectionChanged() {
  const StudioData& d = state_.data();
  Selection& s = state_.selection();
  if (!d.empty() && !d.documents.empty() && (!d.document || d.document->index != s.document)) {
    s.document = std::clamp<int64_t>(s.document, 0, static_cast<int64_t>(d.documents.size()) - 1);
    try {
      state_.SetDocument(LoadDocument(trace_path_.toStdString(), s.document, tokenizer_.get()));
    } catch (const std::exception& e) {
      s.document = d.document ? d.document->index : 0;
      Error("Cannot read document", QString::fromUtf8(e.what()));
    }
  }
  UpdateStatus();
}

void MainWindow::StepLayer(int delta) {
  const int L = state_.data().trace.info.num_layers;
  if (L == 0) return;
  Selection& s = state_.selection();
  s.layer = std::clamp(s.layer + delta, 0, L - 1);
  s.experts.clear();
  state_.NotifySelectionEdited(nullptr);
}

void MainWindow::StepDocument(int delta) {
  const int64_t D = static_cast<int64_t>(state_.data().documents.size());
  if (D == 0) return;
  Selection& s = state_.selection();
  s.document = std::clamp<int64_t>(s.document + delta, 0, D - 1);
  s.token_begin = s.token_end = 0;
  state_.NotifySelectionEdited(nullptr);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  CancelJob();
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  QMainWindow::closeEvent(e);
}

void MainWindow::changeEvent(QEvent* e) {
  if (e->type() == QEvent::PaletteChange || e->type() == QEvent::ApplicationPaletteChange ||
      e->type() == QEvent::ThemeChange) {
    const bool dark = DarkPalette();
    for (ImGuiWidget* w : widgets_) w->SetDark(dark);
  }
  QMainWindow::changeEvent(e);
}

}  // namespace moe::studio
