// moescope-studio: the desktop app for routing inspection (docs/gui.md).
//   moescope-studio [TRACE.h5] [--model DIR]   (neither: the bundled model and its sample trace)
//   moescope-studio --export-views OUT_DIR TRACE.h5 [--model DIR] [--size WxH] [--scale S]
//                   [--document N] [--layer L] [--expert E,...] [--domain NAME] [--dark]
//                   [--ablate] [--results FILE]...
#include <QApplication>
#include <QCommandLineParser>
#include <QPixmap>
#include <QScreen>
#include <QSurfaceFormat>
#include <QTimer>
#include <filesystem>
#include <iostream>
#include <optional>

#include "core/model_loader.h"
#include "gui/app/export_views.h"
#include "gui/app/main_window.h"

namespace {

using moe::studio::MainWindow;

// The command line, parsed and checked. An option left out is nullopt where giving it (even
// empty) changes what happens, else its default.
struct StudioOptions {
  std::optional<QString> trace;       // the positional TRACE.h5
  std::optional<QString> model_dir;   // --model; none: the bundled model, quietly
  std::optional<QString> export_dir;  // --export-views: render every view and exit
  std::optional<QString> screenshot;  // --screenshot PATH: open, save the window, exit
  QSize size;                         // --size (default 1280x800)
  bool size_given = false;
  float scale = 1;  // --scale; checked only for --export-views, the one user
  int64_t document = 0;
  int layer = 0;
  std::vector<int> experts;
  QString domain;  // empty: all domains
  bool dark = false, ablate = false;
  QStringList results;  // --results, each an export of prune-curve, cache-sim or replay
};

// The options moescope-studio takes, registered on `parser`, kept by name for the look-ups.
struct OptionSet {
  QCommandLineOption model{"model", "Model folder (token text, and the model's facts).", "DIR"};
  QCommandLineOption export_views{
      "export-views", "Render every view to OUT_DIR/<view>.png and write <view>.csv, then exit.",
      "OUT_DIR"};
  QCommandLineOption size{"size", "Export: view size in logical pixels.", "WxH", "1280x800"};
  QCommandLineOption scale{"scale", "Export: pixels per logical pixel.", "S", "1"};
  QCommandLineOption document{"document", "Document shown by the token map.", "N", "0"};
  QCommandLineOption layer{"layer", "Selected layer.", "L", "0"};
  QCommandLineOption dark{"dark", "Export: dark colours."};
  QCommandLineOption expert{"expert", "Export: selected experts of the layer (E,E,...).", "E"};
  QCommandLineOption domain{"domain", "Export: selected domain facet.", "NAME"};
  QCommandLineOption ablate{
      "ablate",
      "Export: run the ablation panel's default request (the selected experts of the layer, "
      "re-routed, over the selected domain's documents) before rendering it."};
  QCommandLineOption results{
      "results",
      "An export of moescope prune-curve (results .h5), cache-sim (cache.json) or replay (report "
      ".csv) to show; may be repeated. Those next to the trace are found without it.",
      "FILE"};
  QCommandLineOption screenshot{
      "screenshot",
      "Open the window (and TRACE, applying --layer/--expert/--document/--domain), save a "
      "screenshot to PATH once it is shown, and exit: 0, or 3 when an error dialog opened.",
      "PATH"};

  void AddTo(QCommandLineParser& parser) const {
    parser.addOptions({model, export_views, size, scale, document, layer, dark, expert, domain,
                       ablate, results, screenshot});
  }
};

// OpenGL 3.3 core for imgui_impl_opengl3, set before the application exists.
void UseOpenGL33() {
  QSurfaceFormat format;
  format.setVersion(3, 3);
  format.setProfile(QSurfaceFormat::CoreProfile);
  QSurfaceFormat::setDefaultFormat(format);
  QApplication::setAttribute(Qt::AA_ShareOpenGLContexts);
}

// "E,E,..." into expert numbers; nullopt (after saying why) when one is not a number.
std::optional<std::vector<int>> ParseExperts(const QString& list) {
  std::vector<int> experts;
  for (const QString& e : list.split(',', Qt::SkipEmptyParts)) {
    bool ok = false;
    experts.push_back(e.toInt(&ok));
    if (!ok) {
      std::cerr << "moescope-studio: --expert takes expert numbers, got " << e.toStdString()
                << "\n";
      return std::nullopt;
    }
  }
  return experts;
}

// "WxH", each at least 64; nullopt (after saying why) otherwise.
std::optional<QSize> ParseSize(const QString& text) {
  const QStringList wh = text.split('x');
  bool ok_w = false, ok_h = false;
  QSize size;
  if (wh.size() == 2) size = QSize(wh[0].toInt(&ok_w), wh[1].toInt(&ok_h));
  if (!ok_w || !ok_h || size.width() < 64 || size.height() < 64) {
    std::cerr << "moescope-studio: --size must be WxH (at least 64x64), got " << text.toStdString()
              << "\n";
    return std::nullopt;
  }
  return size;
}

// What --export-views needs beyond the rest: a trace and a sane --scale.
bool CheckExportOptions(const StudioOptions& o) {
  if (!o.trace) {
    std::cerr << "moescope-studio: --export-views needs a trace: --export-views OUT_DIR TRACE.h5\n";
    return false;
  }
  if (o.scale < 0.5f || o.scale > 4) {
    std::cerr << "moescope-studio: --scale must be between 0.5 and 4\n";
    return false;
  }
  return true;
}

// Parses the command line of `app` (--help and --version print and exit here). Returns nullopt,
// having said why on stderr, when the options do not make sense.
std::optional<StudioOptions> ParseCommandLine(const QApplication& app) {
  QCommandLineParser parser;
  parser.setApplicationDescription("Routing inspection for LLaMA-MoE mixture-of-experts models.");
  parser.addHelpOption();
  parser.addVersionOption();
  const OptionSet opt;
  opt.AddTo(parser);
  parser.addPositionalArgument("trace", "Trace file (HDF5) to open.", "[TRACE.h5]");
  parser.process(app);
  const QStringList args = parser.positionalArguments();
  if (args.size() > 1) {
    std::cerr << "moescope-studio: expected at most one trace, got " << args.size() << "\n";
    return std::nullopt;
  }

  StudioOptions o;
  if (!args.isEmpty()) o.trace = args.front();
  if (parser.isSet(opt.model)) o.model_dir = parser.value(opt.model);
  if (parser.isSet(opt.export_views)) o.export_dir = parser.value(opt.export_views);
  if (parser.isSet(opt.screenshot)) o.screenshot = parser.value(opt.screenshot);
  if (parser.isSet(opt.expert)) {
    auto experts = ParseExperts(parser.value(opt.expert));
    if (!experts) return std::nullopt;
    o.experts = std::move(*experts);
  }
  const std::optional<QSize> size = ParseSize(parser.value(opt.size));
  if (!size) return std::nullopt;
  o.size = *size;
  o.size_given = parser.isSet(opt.size);
  bool scale_ok = false;
  o.scale = parser.value(opt.scale).toFloat(&scale_ok);
  if (!scale_ok) o.scale = 0;  // out of range: rejected below when exporting
  o.document = parser.value(opt.document).toLongLong();
  o.layer = parser.value(opt.layer).toInt();
  o.domain = parser.value(opt.domain);
  o.dark = parser.isSet(opt.dark);
  o.ablate = parser.isSet(opt.ablate);
  o.results = parser.values(opt.results);
  if (o.export_dir && !CheckExportOptions(o)) return std::nullopt;
  return o;
}

// --export-views: renders every view offscreen, no window. Returns the exit code.
int RunExport(const StudioOptions& o) {
  moe::studio::ExportCommand c;
  c.out_dir = o.export_dir->toStdString();
  c.trace = o.trace->toStdString();
  if (o.model_dir) c.model_dir = o.model_dir->toStdString();
  c.options.size = o.size;
  c.options.pixel_ratio = o.scale;
  c.options.dark = o.dark;
  c.document = o.document;
  c.layer = o.layer;
  c.experts = o.experts;
  c.domain = o.domain.toStdString();
  c.ablate = o.ablate;
  for (const QString& f : o.results) c.results.push_back(f.toStdString());
  return moe::studio::RunExportCommand(c);
}

// Opens the model and the trace asked for. Returns whether a trace is now loading.
bool OpenStartupFiles(MainWindow& window, const StudioOptions& o) {
  if (o.model_dir) {
    window.OpenModel(*o.model_dir);
  } else {
    // The bundled model (or $MOESCOPE_MODEL), quietly: token text and the model's facts.
    const std::filesystem::path dir = moe::DefaultModelDir();
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec))
      window.OpenModel(QString::fromStdString(dir.string()), true);
  }
  for (const QString& f : o.results) window.OpenResults(f);
  if (o.trace) {
    window.OpenTrace(*o.trace);
    return true;
  }
  // No trace and no model given: the bundled model's trace of the bundled sample corpus (made
  // once, in the user's cache folder), so a first start shows something.
  return !o.model_dir && window.OpenBundledTrace();
}

// --screenshot: once the window shows the trace (or at once, with none loading), saves it to
// the path and quits: 0, or 3 when an error dialog opened.
void ScheduleScreenshot(MainWindow& window, const StudioOptions& o, bool opening) {
  const QString path = *o.screenshot;
  auto shoot = [&window, path] {
    // Let the views draw a few frames first.
    QTimer::singleShot(1000, &window, [&window, path] {
      // An error dialog is a window of its own: grab the screen so the picture shows it.
      QPixmap image = window.errors() > 0 && window.screen() != nullptr
                          ? window.screen()->grabWindow(0)
                          : window.grab();
      if (!image.save(path))
        std::cerr << "moescope-studio: cannot write " << path.toStdString() << "\n";
      QApplication::exit(window.errors() > 0 ? 3 : 0);
    });
  };
  if (!opening) {
    shoot();
    return;
  }
  // The trace loads in the background and reports back through the event loop.
  QObject::connect(&window, &MainWindow::traceLoadFinished, &window,
                   [&window, shoot, layer = o.layer, experts = o.experts, document = o.document,
                    domain = o.domain](bool ok) {
                     if (ok) window.ApplySelection(layer, experts, document, domain);
                     shoot();
                   });
}

// The interactive app (or a scripted --screenshot run). Returns the event loop's exit code.
int RunWindow(QApplication& app, const StudioOptions& o) {
  MainWindow window;
  if (o.screenshot) {
    window.SetScripted(true);
    window.resize(o.size_given ? o.size : QSize(1400, 900));
  }
  window.show();
  const bool opening = OpenStartupFiles(window, o);
  if (o.screenshot) ScheduleScreenshot(window, o, opening);
  return app.exec();
}

}  // namespace

int main(int argc, char** argv) {
  UseOpenGL33();
  QApplication app(argc, argv);
  QApplication::setOrganizationName("moescope");
  QApplication::setApplicationName("moescope-studio");
  QApplication::setApplicationVersion(MOESCOPE_VERSION);

  const std::optional<StudioOptions> options = ParseCommandLine(app);
  if (!options) return 2;
  if (options->export_dir) return RunExport(*options);
  return RunWindow(app, *options);
}
