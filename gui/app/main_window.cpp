#include "gui/app/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QThread>
#include <QTimer>
#include <iostream>
#include <optional>

#include "core/model_loader.h"
#include "core/tokenizer.h"
#include "gui/app/export_views.h"
#include "gui/app/imgui_widget.h"
#include "gui/model/ablation_job.h"
#include "gui/model/prompt_job.h"
#include "gui/model/sample_trace.h"
#include "gui/model/studio_loader.h"
#include "gui/model/trace_watch.h"
#include "gui/views/ablation_view.h"
#include "gui/views/prompt_view.h"

namespace moe::studio {
namespace {

constexpr int kMaxRecent = 8;

struct JobResult {
  std::optional<LoadResult> loaded;
  QString error;
  bool cancelled = false;
  std::atomic<int> per_mille{0};
};

}  // namespace

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

bool MainWindow::DarkPalette() const {
  return QApplication::palette().color(QPalette::Window).lightness() < 128;
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
    } else if (name == "prompt" && ablation != nullptr) {
      tabifyDockWidget(ablation, dock);  // both run the model; the prompt works without a trace
      dock->raise();
    } else if (name == "coactivation" && specialization != nullptr) {
      tabifyDockWidget(specialization, dock);  // square heatmaps share the specialization's room
      specialization->raise();
    } else {
      addDockWidget(Qt::RightDockWidgetArea, dock);
      if (name == "specialization") specialization = dock;
    }
  }
}

void MainWindow::BuildMenus() {
  QMenu* file = menuBar()->addMenu("&File");
  QAction* open = file->addAction("&Open trace...", this, [this] {
    QSettings s;
    const QString path =
        QFileDialog::getOpenFileName(this, "Open trace", s.value("dirs/trace").toString(),
                                     "moescope traces (*.h5 *.hdf5);;All files (*)");
    if (path.isEmpty()) return;
    s.setValue("dirs/trace", QFileInfo(path).absolutePath());
    OpenTrace(path);
  });
  open->setShortcut(QKeySequence::Open);
  QAction* model = file->addAction("Open &model...", this, [this] {
    QSettings s;
    const QString dir = QFileDialog::getExistingDirectory(this, "Open model folder",
                                                          s.value("dirs/model").toString());
    if (dir.isEmpty()) return;
    s.setValue("dirs/model", dir);
    if (OpenModel(dir) && !trace_path_.isEmpty()) OpenTrace(trace_path_);  // token text
  });
  model->setShortcut(QKeySequence("Ctrl+M"));
  QAction* refresh = file->addAction("Re&fresh trace", this, [this] { RefreshTrace(); });
  refresh->setShortcut(QKeySequence::Refresh);
  auto_refresh_ = file->addAction("&Auto-refresh a trace being written");
  auto_refresh_->setCheckable(true);
  auto_refresh_->setChecked(QSettings().value("trace/auto_refresh", true).toBool());
  connect(auto_refresh_, &QAction::toggled, this, [this](bool on) {
    QSettings().setValue("trace/auto_refresh", on);
    WatchTrace();
  });
  recent_menu_ = file->addMenu("&Recent files");
  RebuildRecentMenu();
  file->addSeparator();
  QAction* exp = file->addAction("&Export views...", this, [this] { ExportViewsDialog(); });
  exp->setShortcut(QKeySequence("Ctrl+E"));
  file->addSeparator();
  QAction* quit = file->addAction("&Quit", this, [this] { close(); });
  quit->setShortcut(QKeySequence::Quit);

  QMenu* view = menuBar()->addMenu("&View");
  for (QDockWidget* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());
  view->addSeparator();
  QAction* next_layer = view->addAction("Next layer", this, [this] { StepLayer(1); });
  next_layer->setShortcut(QKeySequence("Alt+Down"));
  QAction* prev_layer = view->addAction("Previous layer", this, [this] { StepLayer(-1); });
  prev_layer->setShortcut(QKeySequence("Alt+Up"));
  QAction* next_doc = view->addAction("Next document", this, [this] { StepDocument(1); });
  next_doc->setShortcut(QKeySequence("Alt+Right"));
  QAction* prev_doc = view->addAction("Previous document", this, [this] { StepDocument(-1); });
  prev_doc->setShortcut(QKeySequence("Alt+Left"));
  QAction* clear = view->addAction("Clear expert selection", this, [this] {
    state_.selection().experts.clear();
    state_.selection().token_begin = state_.selection().token_end = 0;
    state_.NotifySelectionEdited(nullptr);
  });
  clear->setShortcut(QKeySequence("Ctrl+Shift+A"));

  QMenu* help = menuBar()->addMenu("&Help");
  help->addAction("&About moescope-studio", this, [this] {
    QMessageBox::about(this, "About moescope-studio",
                       "moescope-studio " MOESCOPE_VERSION
                       "\nRouting inspection for LLaMA-MoE mixture-of-experts models.\n"
                       "Qt " QT_VERSION_STR ", Dear ImGui " IMGUI_VERSION);
  });
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

void MainWindow::RebuildRecentMenu() {
  recent_menu_->clear();
  const QStringList recent = QSettings().value("recent/traces").toStringList();
  for (const QString& path : recent)
    recent_menu_->addAction(path, this, [this, path] { OpenTrace(path); });
  recent_menu_->setEnabled(!recent.isEmpty());
  if (!recent.isEmpty()) {
    recent_menu_->addSeparator();
    recent_menu_->addAction("Clear", this, [this] {
      QSettings().remove("recent/traces");
      RebuildRecentMenu();
    });
  }
}

void MainWindow::AddRecent(const QString& path) {
  QSettings s;
  QStringList recent = s.value("recent/traces").toStringList();
  const QString abs = QFileInfo(path).absoluteFilePath();
  recent.removeAll(abs);
  recent.prepend(abs);
  while (recent.size() > kMaxRecent) recent.removeLast();
  s.setValue("recent/traces", recent);
  RebuildRecentMenu();
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

void MainWindow::CancelJob() {
  if (cancel_flag_) cancel_flag_->store(true);
  for (QThread* t : findChildren<QThread*>()) t->wait();
}

bool MainWindow::OpenModel(const QString& dir, bool quiet_errors) {
  QApplication::setOverrideCursor(Qt::WaitCursor);
  try {
    auto m = std::make_shared<LoadedModel>(LoadModel(dir.toStdString()));
    QApplication::restoreOverrideCursor();
    model_ = std::move(m);
    UpdateStatus();
    return true;
  } catch (const std::exception& e) {
    QApplication::restoreOverrideCursor();
    if (!quiet_errors) Error("Cannot open model", QString::fromUtf8(e.what()));
    return false;
  }
}

void MainWindow::OpenTrace(const QString& path) {
  LoadTrace(path, false);
}

void MainWindow::RefreshTrace() {
  if (trace_path_.isEmpty() || job_running_) return;
  LoadTrace(trace_path_, true);
}

void MainWindow::WatchTrace() {
  const StudioData& d = state_.data();
  const bool follow = !d.empty() && !d.trace.info.complete && auto_refresh_->isChecked();
  if (!follow) {
    watch_.reset();
    refresh_timer_->stop();
    return;
  }
  try {
    if (watch_)
      watch_->Shown(d.trace.documents, d.trace.info.complete);
    else
      watch_ =
          std::make_unique<TraceWatch>(d.trace.info.path, d.trace.documents, d.trace.info.complete);
    refresh_timer_->start(kRefreshMilliseconds);
  } catch (const std::exception& e) {
    watch_.reset();
    refresh_timer_->stop();
    statusBar()->showMessage("Cannot follow the trace: " + QString::fromUtf8(e.what()), 5000);
  }
}

void MainWindow::PollTrace() {
  if (!watch_ || job_running_) return;  // a load in progress: ask again on the next tick
  try {
    if (watch_->Changed()) RefreshTrace();
  } catch (const std::exception& e) {
    watch_.reset();
    refresh_timer_->stop();
    Error("Cannot refresh trace", QString::fromUtf8(e.what()));
  }
}

void MainWindow::LoadTrace(const QString& path, bool refresh) {
  CancelJob();
  const int id = ++job_id_;
  cancel_flag_ = std::make_shared<std::atomic<bool>>(false);
  auto result = std::make_shared<JobResult>();

  LoadOptions options;
  UseModel(options, model_);
  options.cancel = cancel_flag_.get();
  if (refresh) options.first_document = state_.selection().document;
  options.progress = [result](double f) { result->per_mille = static_cast<int>(f * 1000); };
  auto flag = cancel_flag_;  // kept alive by the thread
  const std::string file = path.toStdString();
  QThread* thread = QThread::create([result, options, file, flag] {
    try {
      result->loaded = LoadStudioData(file, options);
    } catch (const Cancelled&) {
      result->cancelled = true;
    } catch (const std::exception& e) {
      result->error = QString::fromUtf8(e.what());
    } catch (...) {
      result->error = "unknown error";
    }
  });
  thread->setParent(this);
  ShowJobProgress((refresh ? "Refreshing " : "Loading ") + path + " ...");
  auto* timer = new QTimer(thread);
  connect(timer, &QTimer::timeout, this,
          [this, result] { progress_->setValue(result->per_mille); });
  timer->start(100);
  connect(thread, &QThread::finished, this, [this, thread, result, id, path, refresh] {
    thread->deleteLater();
    if (id != job_id_) return;  // a newer job replaced this one
    HideJobProgress();
    if (result->cancelled) {
      statusBar()->showMessage("Loading cancelled", 3000);
      Q_EMIT traceLoadFinished(false);
      return;
    }
    if (!result->loaded) {
      Error(refresh ? "Cannot refresh trace" : "Cannot open trace", result->error);
      if (refresh) {  // the shown data stays; do not try again every tick
        watch_.reset();
        refresh_timer_->stop();
      }
      Q_EMIT traceLoadFinished(false);
      return;
    }
    tokenizer_ = result->loaded->tokenizer;
    trace_path_ = path;
    auto data = std::make_shared<StudioData>(std::move(result->loaded->data));
    if (refresh) {
      state_.RefreshData(std::move(data));
    } else {
      watch_.reset();  // another trace, or the same one opened anew
      state_.SetData(std::move(data));
      AddRecent(path);
    }
    WatchTrace();
    setWindowTitle("moescope-studio - " + QFileInfo(path).fileName());
    UpdateStatus();
    Q_EMIT traceLoadFinished(true);
  });
  thread->start();
}

void MainWindow::ShowJobProgress(const QString& message) {
  job_running_ = true;
  progress_->setValue(0);
  progress_->setVisible(true);
  cancel_->setVisible(true);
  statusBar()->showMessage(message);
}

void MainWindow::HideJobProgress() {
  job_running_ = false;
  progress_->setVisible(false);
  cancel_->setVisible(false);
  statusBar()->clearMessage();
}

bool MainWindow::OpenBundledTrace() {
  if (!model_) return false;  // nothing to trace with
  CancelJob();
  const int id = ++job_id_;
  cancel_flag_ = std::make_shared<std::atomic<bool>>(false);
  SampleTraceRequest request;
  request.model_dir = model_->dir;
  request.corpus_dir = SampleCorpusDir();
  request.output =
      std::filesystem::path(
          QStandardPaths::writableLocation(QStandardPaths::GenericCacheLocation).toStdString()) /
      "moescope" / "sample_trace.h5";
  // Reused as it is: open it at once, without a thread.
  if (SampleTraceUpToDate(request)) {
    OpenTrace(QString::fromStdString(request.output.string()));
    return true;
  }
  struct Result {
    QString error;
    bool cancelled = false;
    std::atomic<int> per_mille{0};
  };
  auto result = std::make_shared<Result>();
  auto flag = cancel_flag_;
  QThread* thread = QThread::create([result, request, flag] {
    try {
      EnsureSampleTrace(request, flag.get(),
                        [result](double f) { result->per_mille = static_cast<int>(f * 1000); });
    } catch (const Cancelled&) {
      result->cancelled = true;
    } catch (const std::exception& e) {
      result->error = QString::fromUtf8(e.what());
    }
  });
  thread->setParent(this);
  ShowJobProgress("Tracing the bundled model over the sample corpus (once) ...");
  auto* timer = new QTimer(thread);
  connect(timer, &QTimer::timeout, this,
          [this, result] { progress_->setValue(result->per_mille); });
  timer->start(100);
  const QString path = QString::fromStdString(request.output.string());
  connect(thread, &QThread::finished, this, [this, thread, result, id, path] {
    thread->deleteLater();
    if (id != job_id_) return;  // a newer job replaced this one
    HideJobProgress();
    if (result->cancelled) {
      statusBar()->showMessage("Tracing cancelled; the next start continues it", 5000);
      Q_EMIT traceLoadFinished(false);
    } else if (!result->error.isEmpty()) {
      Error("Cannot make the sample trace", result->error);
      Q_EMIT traceLoadFinished(false);
    } else {
      OpenTrace(path);
    }
  });
  thread->start();
  return true;
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

void MainWindow::ExportViewsDialog() {
  if (state_.data().empty()) {
    Error("Export views", "Open a trace first.");
    return;
  }
  const QStringList sizes = {"1280 x 800 (1x)", "1280 x 800 (2x, 2560 x 1600 pixels)",
                             "1920 x 1200 (1x)", "current window size"};
  bool ok = false;
  const QString choice =
      QInputDialog::getItem(this, "Export views", "Image size:", sizes, 0, false, &ok);
  if (!ok) return;
  QSettings s;
  const QString dir = QFileDialog::getExistingDirectory(this, "Export views to folder",
                                                        s.value("dirs/export").toString());
  if (dir.isEmpty()) return;
  s.setValue("dirs/export", dir);
  ExportOptions o;
  o.dark = DarkPalette();
  if (choice == sizes[1]) o.pixel_ratio = 2;
  if (choice == sizes[2]) o.size = QSize(1920, 1200);
  if (choice == sizes[3]) {
    o.size = size();
    o.pixel_ratio = static_cast<float>(devicePixelRatioF());
  }
  std::vector<View*> views;
  for (auto& v : views_) views.push_back(v.get());
  try {
    const auto files = ExportViews(dir.toStdString(), views, state_.data(), state_.selection(), o);
    statusBar()->showMessage(QString("Exported %1 files to %2").arg(files.size()).arg(dir), 5000);
  } catch (const std::exception& e) {
    Error("Export views", QString::fromUtf8(e.what()));
  }
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
