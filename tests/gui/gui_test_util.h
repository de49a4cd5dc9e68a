#pragma once
// Shared by the moescope-studio tests: a headless ImGui context (no window, no GPU), a reader of
// what a frame drew, a small trace made with the analysis API on the bundled model, and
// hand-made StudioData with known values.
#include <imgui.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"
#include "gui/views/view.h"
#include "headless_views.h"

namespace gui_test {

using moe::studio::Headless;
using moe::studio::MakeData;
using moe::studio::MakeDocument;

inline std::filesystem::path SourceDir() {
  return MOESCOPE_SOURCE_DIR;
}
inline std::filesystem::path TinyModel() {
  return SourceDir() / "tests/fixtures/tiny_moe";
}
inline std::filesystem::path TinyCorpus() {
  return SourceDir() / "tests/fixtures/corpus/tiny.jsonl";
}
inline std::string Studio() {
  return MOESCOPE_STUDIO;
}

// A shell command's exit status (-1 when it did not exit normally) and its stdout and stderr.
struct ShellRun {
  int status = -1;
  std::string output;
};
ShellRun Shell(const std::string& command);
// `s` as one single-quoted shell word.
std::string Quote(const std::string& s);

// A fresh folder under the system temp dir, removed at exit of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A filled axis-aligned rectangle of one colour in the last frame's draw data (what
// ImDrawList::AddRectFilled emits: 4 vertices, 6 indices, the font atlas' white pixel).
struct Quad {
  ImVec2 min, max;
  ImU32 col;
  ImVec2 center() const { return ImVec2((min.x + max.x) / 2, (min.y + max.y) / 2); }
};
std::vector<Quad> SolidQuads();
// Quads lying inside [min, max] (all four corners).
std::vector<Quad> QuadsIn(const std::vector<Quad>& quads, ImVec2 min, ImVec2 max);
// Whether the last frame showed a tooltip.
bool TooltipShown();

// A trace of the tiny test corpus with the bundled model (made once per test run).
const std::filesystem::path& SmallTrace();

// A trace another process writes step by step, as `moescope trace` does (HDF5 SWMR, with the
// analysis writer API TraceFile): the documents [0, first) of SmallTrace() are committed before
// the constructor returns, the rest on Grow(); Complete() marks the trace complete and waits
// for the writer to exit. The writer ends (leaving the trace incomplete) when this goes away.
class GrowingTrace {
 public:
  GrowingTrace(const std::filesystem::path& path, int64_t first);
  ~GrowingTrace();
  GrowingTrace(const GrowingTrace&) = delete;
  GrowingTrace& operator=(const GrowingTrace&) = delete;

  // Commits the remaining documents; returns once they are committed.
  void Grow();
  // Marks the trace complete; returns whether the writer then exited with status 0.
  bool Complete();
  int64_t documents() const { return documents_; }  // of the whole trace
  int64_t first() const { return first_; }

 private:
  int to_writer_ = -1, from_writer_ = -1;
  int pid_ = -1;
  int64_t documents_ = 0, first_ = 0;
};

// The X display of an Xvfb server this test process started (once; stopped at exit), e.g.
// ":12". One server per process instead of xvfb-run per command: xvfb-run's clean-up races
// (exit status 5) when many run in a row.
const std::string& TestDisplay();

}  // namespace gui_test
