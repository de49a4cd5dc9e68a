// The app following a trace that another process is still writing (HDF5 SWMR): it opens the
// committed prefix, auto-refresh loads the documents committed later while the selection stays,
// and it stops once the trace is complete. Runs in the bridge tests' process (a QApplication
// on Xvfb).
#include <QElapsedTimer>
#include <QTest>
#include <cstdlib>

#include "gui/app/main_window.h"
#include "gui_test_util.h"

using namespace moe::studio;

namespace {

// Processes events until `done` or `ms` pass.
template <typename F>
bool WaitUntil(F done, int ms) {
  QElapsedTimer t;
  t.start();
  while (!done() && t.elapsed() < ms) QTest::qWait(20);
  return done();
}

}  // namespace

TEST_CASE("the app refreshes a trace being written and keeps the selection",
          "[gui][app][swmr][xvfb]") {
  gui_test::TempDir dir("app_refresh");
  // This window's settings (auto-refresh on by default) in a folder of its own.
  ::setenv("XDG_CONFIG_HOME", (dir.path() / "config").c_str(), 1);
  const auto path = dir.path() / "growing.h5";
  gui_test::GrowingTrace writer(path, 4);

  MainWindow window;
  window.SetScripted(true);
  int loads = 0;
  QObject::connect(&window, &MainWindow::traceLoadFinished, [&](bool ok) { loads += ok; });
  window.OpenTrace(QString::fromStdString(path.string()));
  REQUIRE(WaitUntil([&] { return loads == 1; }, 60000));
  const StudioData* data = &window.state().data();
  CHECK(data->trace.documents == 4);
  CHECK(!data->trace.info.complete);
  window.ApplySelection(1, {2}, 3, "");

  writer.Grow();  // auto-refresh polls every 2 s and loads the grown trace
  REQUIRE(WaitUntil([&] { return window.state().data().trace.documents == writer.documents(); },
                    60000));
  const Selection& sel = window.state().selection();
  CHECK(sel.layer == 1);
  CHECK(sel.experts == std::vector<int>{2});
  CHECK(sel.document == 3);
  REQUIRE(window.state().data().document != nullptr);
  CHECK(window.state().data().document->index == 3);
  CHECK(!window.state().data().trace.info.complete);

  CHECK(writer.Complete());
  REQUIRE(WaitUntil([&] { return window.state().data().trace.info.complete; }, 60000));
  CHECK(window.state().data().trace.documents == writer.documents());
  CHECK(window.errors() == 0);
}
