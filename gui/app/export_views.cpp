#include "gui/app/export_views.h"

#include <QImage>
#include <QOffscreenSurface>
#include <QOpenGLContext>
#include <QOpenGLFramebufferObject>
#include <QOpenGLFunctions>
#include <algorithm>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "core/model_loader.h"
#include "core/tokenizer.h"
#include "gui/app/imgui_renderer.h"
#include "gui/model/ablation_job.h"
#include "gui/model/prompt_job.h"
#include "gui/model/results_loader.h"
#include "gui/model/studio_loader.h"
#include "gui/views/ablation_view.h"
#include "gui/views/prompt_view.h"

namespace moe::studio {

std::vector<std::filesystem::path> ExportViews(const std::filesystem::path& dir,
                                               const std::vector<View*>& views,
                                               const StudioData& data, const Selection& selection,
                                               const ExportOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) Fail(dir.string(), "cannot create the folder: " + ec.message());

  // Our own context, current on an offscreen surface; the caller's is restored afterwards.
  QOpenGLContext* previous = QOpenGLContext::currentContext();
  QSurface* previous_surface = previous ? previous->surface() : nullptr;
  QOffscreenSurface surface;
  surface.setFormat(QSurfaceFormat::defaultFormat());
  surface.create();
  QOpenGLContext context;
  context.setFormat(QSurfaceFormat::defaultFormat());
  if (!surface.isValid() || !context.create() || !context.makeCurrent(&surface))
    Fail("export views",
         "no OpenGL context (run under an X server, e.g. `xvfb-run -a moescope-studio ...`; "
         "Qt's offscreen platform has no OpenGL)");

  std::vector<std::filesystem::path> written;
  {
    const QSize pixels(static_cast<int>(o.size.width() * o.pixel_ratio),
                       static_cast<int>(o.size.height() * o.pixel_ratio));
    QOpenGLFramebufferObject fbo(pixels);
    if (!fbo.isValid()) Fail("export views", "cannot create a framebuffer object");
    ImGuiRenderer renderer(o.dark);
    if (!renderer.InitGl(o.pixel_ratio)) Fail("export views", "OpenGL 3.3 is not available");
    const ImVec2 size(static_cast<float>(o.size.width()), static_cast<float>(o.size.height()));
    for (View* view : views) {
      if (!view->HasData(data)) continue;  // e.g. no pruning curve was found or given
      Selection sel = selection;  // views may adjust it while drawing; exports change nothing
      fbo.bind();
      // A few frames: ImGui sizes tables and lays out text on the frames after the first.
      for (int frame = 0; frame < 3; ++frame)
        renderer.Frame(size, o.pixel_ratio, 1.0f / 60,
                       [&] { DrawViewWindow(*view, data, sel, ImVec2(0, 0), size); });
      context.functions()->glFinish();
      const QImage image = fbo.toImage().convertToFormat(QImage::Format_RGB32);
      fbo.release();
      const std::filesystem::path png = dir / (std::string(view->Name()) + ".png");
      if (!image.save(QString::fromStdString(png.string()), "PNG"))
        Fail(png.string(), "cannot write the image");
      written.push_back(png);
      auto write_csv = [&](const std::string& stem, const auto& write) {
        const std::filesystem::path csv = dir / (stem + ".csv");
        std::ofstream out(csv);
        write(out);
        out.close();
        if (!out) Fail(csv.string(), "cannot write the file");
        written.push_back(csv);
      };
      write_csv(view->Name(), [&](std::ostream& out) { view->WriteCsv(data, selection, out); });
      for (const std::string& table : view->ExtraCsvTables())
        write_csv(std::string(view->Name()) + "_" + table,
                  [&](std::ostream& out) { view->WriteExtraCsv(table, data, selection, out); });
    }
  }
  context.doneCurrent();
  if (previous != nullptr && previous_surface != nullptr) previous->makeCurrent(previous_surface);
  return written;
}

int RunExportCommand(const ExportCommand& c) {
  try {
    LoadOptions lo;
    std::shared_ptr<LoadedModel> model;
    if (!c.model_dir.empty()) model = std::make_shared<LoadedModel>(LoadModel(c.model_dir));
    UseModel(lo, model);
    lo.first_document = c.document;
    LoadResult r = LoadStudioData(c.trace, lo);
    // Results found beside the trace that did not read are reported; those given are required.
    for (const std::string& e : r.results_errors)
      std::cerr << "moescope-studio: skipped: " << e << "\n";
    for (const std::filesystem::path& f : c.results) LoadResultsFile(f, r.data.results);
    Selection sel;
    sel.layer = r.data.trace.ShownLayer(c.layer);
    sel.document = r.data.document ? r.data.document->index : 0;
    for (int e : c.experts) {
      if (e < 0 || e >= r.data.trace.info.num_experts)
        Fail("--expert", std::to_string(e) + " is out of range (" +
                             std::to_string(r.data.trace.info.num_experts) + " experts)");
      if (!sel.HasExpert(e)) sel.ToggleExpert(e);
    }
    if (!c.domain.empty()) {
      const auto at = std::find(r.data.domains.begin(), r.data.domains.end(), c.domain);
      if (at == r.data.domains.end())
        Fail("--domain", "the trace has no domain '" + c.domain + "'");
      sel.domain = static_cast<int>(at - r.data.domains.begin());
    }
    std::vector<std::unique_ptr<View>> views = MakeAllViews();
    // The live prompt view runs its default prompt synchronously: on the --model model, else
    // the trace's model when it is still there, else the bundled one; the selected experts of
    // the layer are disabled, so the export shows how the predictions change.
    std::filesystem::path prompt_model = c.model_dir;
    if (prompt_model.empty()) prompt_model = r.data.trace.info.model_path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(prompt_model / "config.json", ec))
      prompt_model = DefaultModelDir();
    auto prompt_outcome = std::make_shared<PromptStatus>();
    std::shared_ptr<LoadedModel> prompt_loaded;
    for (auto& v : views)
      if (auto* prompt = dynamic_cast<PromptView*>(v.get())) {
        prompt->set_job({[&](const PromptRequest& req) {
                           try {
                             prompt_loaded = JobModel(req.model_dir, "prompt", prompt_loaded);
                             prompt_outcome->outcome = std::make_shared<const PromptOutcome>(
                                 RunPromptRequest(*prompt_loaded, req));
                             prompt_outcome->error.clear();
                           } catch (const std::exception& e) {
                             prompt_outcome->error = e.what();
                           }
                         },
                         [prompt_outcome] { return *prompt_outcome; },
                         [prompt_model] { return prompt_model.string(); }});
        std::vector<std::pair<int, int>> disabled;
        for (int e : sel.experts) disabled.emplace_back(sel.layer, e);
        prompt->set_disabled(std::move(disabled));
      }
    // The ablation panel: with --ablate its request for this selection runs now, on the panel's
    // model (the --model one, else the trace's), and the panel draws the outcome.
    auto ablation = std::make_shared<AblationStatus>();
    for (auto& v : views)
      if (auto* panel = dynamic_cast<AblationView*>(v.get()); panel != nullptr && c.ablate) {
        ablation->outcome = std::make_shared<const AblationOutcome>(
            RunAblationRequest(panel->MakeRequest(r.data, sel)));
        panel->set_job({nullptr, nullptr, [ablation] { return *ablation; }});
      }
    std::vector<View*> raw;
    for (auto& v : views) raw.push_back(v.get());
    for (const auto& f : ExportViews(c.out_dir, raw, r.data, sel, c.options))
      std::cout << f.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "moescope-studio: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace moe::studio
