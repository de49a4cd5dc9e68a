// `moescope-studio --export-views` on an Xvfb display: every view to PNG (checked not blank) and
// CSV.
#include <QImage>
#include <cstdio>
#include <fstream>
#include <set>

#include "gui_test_util.h"

namespace {

using gui_test::Quote;
using gui_test::Shell;
using Run = gui_test::ShellRun;

}  // namespace

TEST_CASE("moescope-studio --export-views renders every view to a non-blank PNG and writes CSV",
          "[gui][export][xvfb]") {
  gui_test::TempDir dir("export");
  const auto out = dir.path() / "views";
  const Run r = Shell("QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
                      Quote(gui_test::Studio()) + " --export-views " + Quote(out.string()) + " " +
                      Quote(gui_test::SmallTrace().string()) + " --size 1000x700");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* view :
       {"overview", "expert_load", "specialization", "token_map", "coactivation"}) {
    INFO(view);
    const auto png = out / (std::string(view) + ".png");
    const auto csv = out / (std::string(view) + ".csv");
    REQUIRE(std::filesystem::exists(png));
    REQUIRE(std::filesystem::exists(csv));
    CHECK(std::filesystem::file_size(csv) > 20);
    CHECK(r.output.find(png.string()) != std::string::npos);
    QImage image(QString::fromStdString(png.string()));
    REQUIRE(!image.isNull());
    CHECK(image.width() == 1000);
    CHECK(image.height() == 700);
    // Not one colour: text and cells give many distinct colours.
    std::set<QRgb> colours;
    for (int y = 0; y < image.height(); y += 3)
      for (int x = 0; x < image.width(); x += 3) colours.insert(image.pixel(x, y));
    CHECK(colours.size() > 20);
  }
}

TEST_CASE("moescope-studio --export-views at 2x scale doubles the pixels", "[gui][export][xvfb]") {
  gui_test::TempDir dir("export2x");
  const Run r =
      Shell("QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
            Quote(gui_test::Studio()) + " --export-views " + Quote(dir.path().string()) + " " +
            Quote(gui_test::SmallTrace().string()) + " --size 640x400 --scale 2 --layer 1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  QImage image(QString::fromStdString((dir.path() / "expert_load.png").string()));
  CHECK(image.width() == 1280);
  CHECK(image.height() == 800);
}

TEST_CASE("moescope-studio --export-views --ablate exports the ablation panel's results",
          "[gui][export][ablation][xvfb]") {
  gui_test::TempDir dir("export-ablate");
  const Run r = Shell("QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
                      Quote(gui_test::Studio()) + " --export-views " + Quote(dir.path().string()) +
                      " " + Quote(gui_test::SmallTrace().string()) +
                      " --size 1000x700 --layer 1 --expert 0,2 --ablate");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto lines = [&](const char* name) {
    std::ifstream in(dir.path() / name);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  CHECK(lines("ablation.csv") > 1);  // the baseline's and the policy's rows
  CHECK(lines("ablation_changes.csv") > 1);
  CHECK(lines("ablation_routing.csv") > 1);
  CHECK(r.output.find("ablation_routing.csv") != std::string::npos);
}

TEST_CASE("moescope-studio --export-views on a file that is not a trace fails with the reason",
          "[gui][export][bad-input]") {
  gui_test::TempDir dir("export-bad");
  const auto bad = dir.path() / "bad.h5";
  std::ofstream(bad) << "not hdf5";
  // No X server needed: the trace is read before any OpenGL.
  const Run r =
      Shell("QT_QPA_PLATFORM=offscreen " + Quote(gui_test::Studio()) + " --export-views " +
            Quote((dir.path() / "out").string()) + " " + Quote(bad.string()));
  CHECK(r.status == 1);
  CHECK(r.output.find("moescope-studio: ") != std::string::npos);
  CHECK(r.output.find(bad.string()) != std::string::npos);
  const Run usage = Shell("QT_QPA_PLATFORM=offscreen " + Quote(gui_test::Studio()) +
                          " --export-views " + Quote(dir.path().string()));
  CHECK(usage.status == 2);
}
