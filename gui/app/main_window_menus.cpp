// MainWindow's menus (File, View, Help) and what their actions need: the recent-files list in
// QSettings and the Export views dialog.
#include <imgui.h>
#include <QAction>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>

#include "gui/app/export_views.h"
#include "gui/app/main_window.h"

namespace moe::studio {
namespace {

constexpr int kMaxRecent = 8;

}  // namespace

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
  QAction* results = file->addAction("Open &results...", this, [this] {
    QSettings s;
    const QString path = QFileDialog::getOpenFileName(
        this, "Open results of prune-curve, cache-sim or replay",
        s.value("dirs/results").toString(),
        "prune-curve results, cache.json, replay report (*.h5 *.hdf5 *.json *.csv);;All files (*)");
    if (path.isEmpty()) return;
    s.setValue("dirs/results", QFileInfo(path).absolutePath());
    OpenResults(path);
  });
  results->setShortcut(QKeySequence("Ctrl+R"));
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

}  // namespace moe::studio
