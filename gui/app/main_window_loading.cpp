// MainWindow: opening a model, and loading a trace (or making the bundled sample trace) on a
// background thread with the status bar's progress and Cancel; following a trace that is still
// being written.
#include <QApplication>
#include <QFileInfo>
#include <QProgressBar>
#include <QPushButton>
#include <QStandardPaths>
#include <QStatusBar>
#include <QThread>
#include <QTimer>
#include <optional>

#include "core/model_loader.h"
#include "gui/app/main_window.h"
#include "gui/model/results_loader.h"
#include "gui/model/sample_trace.h"
#include "gui/model/studio_loader.h"
#include "gui/model/trace_watch.h"

namespace moe::studio {
namespace {

struct JobResult {
  std::optional<LoadResult> loaded;
  QString error;
  bool cancelled = false;
  std::atomic<int> per_mille{0};
};

// Copies a job's progress (result->per_mille, written by its thread) into `bar` every 100 ms
// while the thread lives: the timer is the thread's child and goes with it.
template <typename Result>
void FollowProgress(QThread* thread, QProgressBar* bar, std::shared_ptr<Result> result) {
  auto* timer = new QTimer(thread);
  QObject::connect(timer, &QTimer::timeout, bar,
                   [bar, result] { bar->setValue(result->per_mille); });
  timer->start(100);
}

// `opened`'s parts marked in `kinds` laid over `found` (the results found next to a trace).
ResultsData Overlay(ResultsData found, const ResultsData& opened, const bool kinds[3]) {
  if (kinds[static_cast<int>(ResultsKind::kPruneCurve)]) found.prune = opened.prune;
  if (kinds[static_cast<int>(ResultsKind::kCacheSim)]) found.cache = opened.cache;
  if (kinds[static_cast<int>(ResultsKind::kReplay)]) found.replay = opened.replay;
  return found;
}

}  // namespace

bool MainWindow::OpenResults(const QString& path) {
  QApplication::setOverrideCursor(Qt::WaitCursor);
  try {
    const ResultsKind kind = LoadResultsFile(path.toStdString(), opened_results_);
    QApplication::restoreOverrideCursor();
    opened_kind_[static_cast<int>(kind)] = true;
    state_.SetResults(Overlay(state_.data().results, opened_results_, opened_kind_));
    statusBar()->showMessage(QString("Opened the %1 of %2").arg(ResultsKindName(kind), path), 5000);
    return true;
  } catch (const std::exception& e) {
    QApplication::restoreOverrideCursor();
    Error("Cannot open results", QString::fromUtf8(e.what()));
    return false;
  }
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
  FollowProgress(thread, progress_, result);
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
    data->results = Overlay(std::move(data->results), opened_results_, opened_kind_);
    if (!refresh && !result->loaded->results_errors.empty())
      Error("Cannot read results next to the trace",
            QString::fromUtf8(result->loaded->results_errors.front().c_str()) +
                (result->loaded->results_errors.size() > 1
                     ? QString(" (and %1 more)").arg(result->loaded->results_errors.size() - 1)
                     : QString()));
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
  FollowProgress(thread, progress_, result);
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

void MainWindow::CancelJob() {
  if (cancel_flag_) cancel_flag_->store(true);
  for (QThread* t : findChildren<QThread*>()) t->wait();
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

}  // namespace moe::studio
