// The whole app on an Xvfb display: moescope-studio opens a trace, a selection is driven from the
// command line (--layer/--expert/--document), the window is captured (--screenshot) and checked
// not to be blank; bad input opens an error dialog and the app keeps running (exit code 3 after
// the capture, never a crash).
#include <hdf5.h>
#include <QImage>
#include <cstdio>
#include <fstream>
#include <set>

#include "core/error.h"
#include "gui/model/studio_loader.h"
#include "gui_test_util.h"

namespace {

using gui_test::Quote;
using gui_test::Shell;
using Run = gui_test::ShellRun;

// The app with its settings in `dir` (not the user's), on the test's Xvfb display.
// `env`: more variables ("NAME=value ").
Run Studio(const gui_test::TempDir& dir, const std::string& args, const std::string& env = "") {
  const auto config = dir.path() / "config";
  std::filesystem::create_directories(config);
  return Shell(env + "XDG_CONFIG_HOME=" + Quote(config.string()) + " QT_QPA_PLATFORM=xcb DISPLAY=" +
               gui_test::TestDisplay() + " " + Quote(gui_test::Studio()) + " " + args);
}

size_t Colours(const QImage& image) {
  std::set<QRgb> colours;
  for (int y = 0; y < image.height(); y += 3)
    for (int x = 0; x < image.width(); x += 3) colours.insert(image.pixel(x, y));
  return colours.size();
}

// A copy of the small trace claiming a newer format_version.
std::filesystem::path NewerTrace(const gui_test::TempDir& dir) {
  const auto path = dir.path() / "newer.h5";
  std::filesystem::copy_file(gui_test::SmallTrace(), path);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
  REQUIRE(a >= 0);
  const int64_t v = 99;
  REQUIRE(H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
  H5Aclose(a);
  H5Fclose(f);
  return path;
}

}  // namespace

TEST_CASE("the app opens a trace, follows a selection and captures its window",
          "[gui][app][xvfb]") {
  gui_test::TempDir dir("app");
  const auto shot = dir.path() / "app.png";
  const Run r =
      Studio(dir, Quote(gui_test::SmallTrace().string()) + " --screenshot " + Quote(shot.string()) +
                      " --size 1400x900 --layer 1 --expert 2,5 --document 1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  QImage image(QString::fromStdString(shot.string()));
  REQUIRE(!image.isNull());
  CHECK(image.width() >= 1000);
  CHECK(Colours(image) > 50);
  // Settings were written (window layout, recent files).
  std::ifstream conf(dir.path() / "config/moescope/moescope-studio.conf");
  const std::string settings((std::istreambuf_iterator<char>(conf)), {});
  CHECK(settings.find("small.h5") != std::string::npos);
}

TEST_CASE("bad input opens a dialog with the reason and the app keeps running",
          "[gui][app][xvfb][bad-input]") {
  gui_test::TempDir dir("app-bad");
  SECTION("a file that is not HDF5") {
    const auto bad = dir.path() / "text.h5";
    std::ofstream(bad) << "not hdf5";
    const Run r = Studio(
        dir, Quote(bad.string()) + " --screenshot " + Quote((dir.path() / "shot.png").string()));
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK(r.output.find("Cannot open trace: " + bad.string()) != std::string::npos);
    CHECK(r.output.find("not an HDF5 file") != std::string::npos);
    CHECK(std::filesystem::exists(dir.path() / "shot.png"));
  }
  SECTION("a trace of a newer format version") {
    const auto newer = NewerTrace(dir);
    const Run r = Studio(
        dir, Quote(newer.string()) + " --screenshot " + Quote((dir.path() / "shot.png").string()));
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK(r.output.find("format_version 99") != std::string::npos);
    CHECK(r.output.find("upgrade moescope") != std::string::npos);
  }
  SECTION("a model folder without config.json") {
    const auto empty = dir.path() / "empty-model";
    std::filesystem::create_directories(empty);
    const Run r = Studio(dir, "--model " + Quote(empty.string()) + " --screenshot " +
                                  Quote((dir.path() / "shot.png").string()));
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK(r.output.find("Cannot open model") != std::string::npos);
    CHECK(r.output.find("config.json") != std::string::npos);
  }
}

TEST_CASE("the loader rejects a trace of a newer format version", "[gui][loader][bad-input]") {
  gui_test::TempDir dir("newer");
  const auto newer = NewerTrace(dir);
  try {
    moe::studio::LoadStudioData(newer, moe::studio::LoadOptions{});
    FAIL("no error");
  } catch (const moe::Error& e) {
    CHECK(std::string(e.what()).find("format_version 99") != std::string::npos);
  }
}

TEST_CASE("started without a trace, the app makes the bundled sample trace and opens it",
          "[gui][app][xvfb][sample-trace]") {
  gui_test::TempDir dir("app-bundled");
  const auto cache = dir.path() / "cache";
  const auto shot = dir.path() / "bundled.png";
  // The tiny test corpus stands in for datasets/sample, so the test stays quick.
  const std::string env = "XDG_CACHE_HOME=" + Quote(cache.string()) + " MOESCOPE_SAMPLE_CORPUS=" +
                          Quote(gui_test::TinyCorpus().parent_path().string()) + " ";
  const Run r = Studio(dir, "--screenshot " + Quote(shot.string()) + " --size 1400x900", env);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto trace = cache / "moescope/sample_trace.h5";
  REQUIRE(std::filesystem::exists(trace));
  const moe::studio::LoadResult loaded = moe::studio::LoadStudioData(trace, {});
  CHECK(loaded.data.trace.info.complete);
  CHECK(loaded.data.trace.documents > 0);
  CHECK(Colours(QImage(QString::fromStdString(shot.string()))) > 50);
  // A second start reuses it.
  const auto made = std::filesystem::last_write_time(trace);
  const Run again = Studio(dir, "--screenshot " + Quote(shot.string()), env);
  INFO(again.output);
  CHECK(again.status == 0);
  CHECK(std::filesystem::last_write_time(trace) == made);
}
