#pragma once
// Renders views offscreen (QOffscreenSurface + FBO, OpenGL 3.3) to PNG and writes their data to
// CSV: File > Export views and `moescope-studio --export-views OUT_DIR TRACE.h5`. Needs a
// QGuiApplication whose platform has OpenGL (xcb, e.g. under `xvfb-run -a`; Qt's offscreen
// platform has none).
#include <QSize>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"
#include "gui/views/view.h"

namespace moe::studio {

struct ExportOptions {
  QSize size{1280, 800};     // logical pixels of each view
  float pixel_ratio = 1.0f;  // PNG pixels per logical pixel (2 for print)
  bool dark = false;
};

// Writes <dir>/<view>.png and <dir>/<view>.csv for every view that has data (View::HasData);
// returns the files written.
// Throws moe::Error when there is no OpenGL or a file cannot be written.
std::vector<std::filesystem::path> ExportViews(const std::filesystem::path& dir,
                                               const std::vector<View*>& views,
                                               const StudioData& data, const Selection& selection,
                                               const ExportOptions& options);

struct ExportCommand {
  std::filesystem::path out_dir, trace, model_dir;
  int64_t document = 0;
  int layer = 0;
  std::vector<int> experts;  // selected experts of `layer`
  std::string domain;        // selected domain facet; empty = all domains
  // Run the ablation panel's request for this selection first (synchronously), so its PNG and
  // CSVs show results; without it the panel exports its controls only.
  bool ablate = false;
  // Exports of prune-curve, cache-sim or replay to show (results_loader.h), besides those found
  // next to the trace; one that does not read is an error.
  std::vector<std::filesystem::path> results;
  ExportOptions options;
};
// --export-views: loads the trace (and the model's tokenizer, if given), exports every view,
// prints the files to stdout; errors go to stderr. Returns the exit code.
int RunExportCommand(const ExportCommand& command);

}  // namespace moe::studio
