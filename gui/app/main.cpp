// moescope-studio: the desktop app for routing inspection (docs/gui.md).
//   moescope-studio [TRACE.h5] [--model DIR]   (neither: the bundled model and its sample trace)
//   moescope-studio --export-views OUT_DIR TRACE.h5 [--model DIR] [--size WxH] [--scale S]
//                   [--document N] [--layer L] [--expert E,...] [--domain NAME] [--dark]
//                   [--ablate]
#include <QApplication>
#include <QCommandLineParser>
#include <QPixmap>
#include <QScreen>
#include <QSurfaceFormat>
#include <QTimer>
#include <filesystem>
#include <iostream>

#include "core/model_loader.h"
#include "gui/app/export_views.h"
#include "gui/app/main_window.h"

int main(int argc, char** argv) {
  // OpenGL 3.3 core for imgui_impl_opengl3, set before the application exists.
  QSurfaceFormat format;
  format.setVersion(3, 3);
  format.setProfile(QSurfaceFormat::CoreProfile);
  QSurfaceFormat::setDefaultFormat(format);
  QApplication::setAttribute(Qt::AA_ShareOpenGLContexts);
  QApplication app(argc, argv);
  QApplication::setOrganizationName("moescope");
  QApplication::setApplicationName("moescope-studio");
  QApplication::setApplicationVersion(MOESCOPE_VERSION);

  QCommandLineParser parser;
  parser.setApplicationDescription("Routing inspection for LLaMA-MoE mixture-of-experts models.");
  parser.addHelpOption();
  parser.addVersionOption();
  const QCommandLineOption model_opt("model", "Model folder (token text, and the model's facts).",
                                     "DIR");
  const QCommandLineOption export_opt(
      "export-views", "Render every view to OUT_DIR/<view>.png and write <view>.csv, then exit.",
      "OUT_DIR");
  const QCommandLineOption size_opt("size", "Export: view size in logical pixels.", "WxH",
                                    "1280x800");
  const QCommandLineOption scale_opt("scale", "Export: pixels per logical pixel.", "S", "1");
  const QCommandLineOption doc_opt("document", "Document shown by the token map.", "N", "0");
  const QCommandLineOption layer_opt("layer", "Selected layer.", "L", "0");
  const QCommandLineOption dark_opt("dark", "Export: dark colours.");
  const QCommandLineOption expert_opt("expert", "Export: selected experts of the layer (E,E,...).",
                                      "E");
  const QCommandLineOption domain_opt("domain", "Export: selected domain facet.", "NAME");
  const QCommandLineOption ablate_opt(
      "ablate",
      "Export: run the ablation panel's default request (the selected experts of the layer, "
      "re-routed, over the selected domain's documents) before rendering it.");
  const QCommandLineOption shot_opt(
      "screenshot",
      "Open the window (and TRACE, applying --layer/--expert/--document/--domain), save a "
      "screenshot to PATH once it is shown, and exit: 0, or 3 when an error dialog opened.",
      "PATH");
  parser.addOptions({model_opt, export_opt, size_opt, scale_opt, doc_opt, layer_opt, dark_opt,
                     expert_opt, domain_opt, ablate_opt, shot_opt});
  parser.addPositionalArgument("trace", "Trace file (HDF5) to open.", "[TRACE.h5]");
  parser.process(app);
  const QStringList args = parser.positionalArguments();
  if (args.size() > 1) {
    std::cerr << "moescope-studio: expected at most one trace, got " << args.size() << "\n";
    return 2;
  }

  std::vector<int> experts;
  if (parser.isSet(expert_opt))
    for (const QString& e : parser.value(expert_opt).split(',', Qt::SkipEmptyParts)) {
      bool ok_e = false;
      experts.push_back(e.toInt(&ok_e));
      if (!ok_e) {
        std::cerr << "moescope-studio: --expert takes expert numbers, got " << e.toStdString()
                  << "\n";
        return 2;
      }
    }
  QSize size;
  {
    const QStringList wh = parser.value(size_opt).split('x');
    bool ok_w = false, ok_h = false;
    if (wh.size() == 2) size = QSize(wh[0].toInt(&ok_w), wh[1].toInt(&ok_h));
    if (!ok_w || !ok_h || size.width() < 64 || size.height() < 64) {
      std::cerr << "moescope-studio: --size must be WxH (at least 64x64), got "
                << parser.value(size_opt).toStdString() << "\n";
      return 2;
    }
  }

  if (parser.isSet(export_opt)) {
    if (args.isEmpty()) {
      std::cerr
          << "moescope-studio: --export-views needs a trace: --export-views OUT_DIR TRACE.h5\n";
      return 2;
    }
    moe::studio::ExportCommand c;
    c.out_dir = parser.value(export_opt).toStdString();
    c.trace = args.front().toStdString();
    if (parser.isSet(model_opt)) c.model_dir = parser.value(model_opt).toStdString();
    c.options.size = size;
    bool ok = false;
    c.options.pixel_ratio = parser.value(scale_opt).toFloat(&ok);
    if (!ok || c.options.pixel_ratio < 0.5f || c.options.pixel_ratio > 4) {
      std::cerr << "moescope-studio: --scale must be between 0.5 and 4\n";
      return 2;
    }
    c.options.dark = parser.isSet(dark_opt);
    c.document = parser.value(doc_opt).toLongLong();
    c.layer = parser.value(layer_opt).toInt();
    c.experts = experts;
    if (parser.isSet(domain_opt)) c.domain = parser.value(domain_opt).toStdString();
    c.ablate = parser.isSet(ablate_opt);
    return moe::studio::RunExportCommand(c);
  }

  moe::studio::MainWindow window;
  const bool screenshot = parser.isSet(shot_opt);
  if (screenshot) {
    window.SetScripted(true);
    window.resize(parser.isSet(size_opt) ? size : QSize(1400, 900));
  }
  window.show();
  if (parser.isSet(model_opt)) {
    window.OpenModel(parser.value(model_opt));
  } else {
    // The bundled model (or $MOESCOPE_MODEL), quietly: token text and the model's facts.
    const std::filesystem::path dir = moe::DefaultModelDir();
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec))
      window.OpenModel(QString::fromStdString(dir.string()), true);
  }
  // No trace and no model given: the bundled model's trace of the bundled sample corpus (made
  // once, in the user's cache folder), so a first start shows something.
  bool opening = !args.isEmpty();
  if (opening)
    window.OpenTrace(args.front());
  else if (!parser.isSet(model_opt))
    opening = window.OpenBundledTrace();
  if (screenshot) {
    const QString path = parser.value(shot_opt);
    auto shoot = [&window, path] {
      // Let the views draw a few frames first.
      QTimer::singleShot(1000, &window, [&window, path] {
        QPixmap image = window.errors() > 0 && window.screen() != nullptr
                            ? window.screen()->grabWindow(0)
                            : window.grab();
        if (!image.save(path))
          std::cerr << "moescope-studio: cannot write " << path.toStdString() << "\n";
        QApplication::exit(window.errors() > 0 ? 3 : 0);
      });
    };
    if (opening) {
      // The trace loads in the background and reports back through the event loop.
      const int layer = parser.value(layer_opt).toInt();
      const qlonglong document = parser.value(doc_opt).toLongLong();
      const QString domain = parser.value(domain_opt);
      QObject::connect(&window, &moe::studio::MainWindow::traceLoadFinished, &window,
                       [&window, shoot, layer, experts, document, domain](bool ok) {
                         if (ok) window.ApplySelection(layer, experts, document, domain);
                         shoot();
                       });
    } else {
      shoot();
    }
  }
  return app.exec();
}
