// The Qt -> ImGui bridge (ImGuiWidget) on a real X server (Xvfb): Qt mouse and wheel
// events reach the views, selections made in one widget redraw the others, and an idle widget
// draws no frames.
#define CATCH_CONFIG_RUNNER
#include <QApplication>
#include <QSurfaceFormat>
#include <QTest>

#include "gui/app/imgui_widget.h"
#include "gui/app/studio_state.h"
#include "gui/views/load_view.h"
#include "gui/views/token_map_view.h"
#include "gui_test_util.h"

using namespace moe::studio;

namespace {

// Processes events until `done` or `ms` pass.
template <typename F>
bool WaitFor(F done, int ms = 3000) {
  QElapsedTimer t;
  t.start();
  while (!done() && t.elapsed() < ms) QTest::qWait(10);
  return done();
}

QPoint ToPoint(ImVec2 p) { return QPoint(static_cast<int>(p.x), static_cast<int>(p.y)); }

// A plain mouse move (QTest::mouseMove moves the X pointer instead, which Xvfb may not report).
void Move(QWidget* w, QPoint p, Qt::KeyboardModifiers mods = Qt::NoModifier) {
  QMouseEvent e(QEvent::MouseMove, QPointF(p), QPointF(w->mapToGlobal(p)), Qt::NoButton,
                Qt::NoButton, mods);
  QApplication::sendEvent(w, &e);
}

}  // namespace

TEST_CASE("mouse events select heatmap cells through the bridge", "[gui][bridge][xvfb]") {
  StudioState state;
  auto data = std::make_shared<StudioData>(gui_test::MakeData(2, 3, 4));
  data->document = gui_test::MakeDocument(0, 100000, 3, 4);
  state.SetData(data);
  LoadView load;
  TokenMapView map;
  ImGuiWidget load_widget(&load, &state, false);
  ImGuiWidget map_widget(&map, &state, false);
  load_widget.resize(900, 700);
  map_widget.resize(900, 700);
  load_widget.show();
  map_widget.show();
  REQUIRE(QTest::qWaitForWindowExposed(&load_widget));
  REQUIRE(QTest::qWaitForWindowExposed(&map_widget));
  REQUIRE(WaitFor([&] { return load.last_heatmap().grid_max.x > 0; }));

  const HeatmapHit grid = load.last_heatmap();
  const float cw = (grid.grid_max.x - grid.grid_min.x) / 4, ch = (grid.grid_max.y - grid.grid_min.y) / 3;
  const QPoint cell(ToPoint(ImVec2(grid.grid_min.x + 2.5f * cw, grid.grid_min.y + 1.5f * ch)));
  Move(&load_widget, cell);
  CHECK(WaitFor([&] { return load.last_heatmap().hovered; }));
  const int64_t map_frames = map_widget.frames();
  QTest::mouseClick(&load_widget, Qt::LeftButton, Qt::NoModifier, cell);
  CHECK(WaitFor([&] { return state.selection().layer == 1 && state.selection().experts == std::vector<int>{2}; }));
  // The other widget redrew for the new selection.
  CHECK(WaitFor([&] { return map_widget.frames() > map_frames; }));

  // Ctrl+click adds an expert.
  const QPoint other(ToPoint(ImVec2(grid.grid_min.x + 0.5f * cw, grid.grid_min.y + 1.5f * ch)));
  Move(&load_widget, other, Qt::ControlModifier);
  QTest::mouseClick(&load_widget, Qt::LeftButton, Qt::ControlModifier, other);
  CHECK(WaitFor([&] { return state.selection().experts == std::vector<int>{0, 2}; }));

  // The wheel scrolls the 100k-token map.
  REQUIRE(WaitFor([&] { return map.last_frame().drawn_tokens > 0; }));
  const int64_t first = map.last_frame().first_token;
  const QPoint middle(450, 400);
  Move(&map_widget, middle);
  for (int i = 0; i < 5; ++i) {
    QWheelEvent wheel(QPointF(middle), QPointF(map_widget.mapToGlobal(middle)), QPoint(),
                      QPoint(0, -120 * 5), Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
    QApplication::sendEvent(&map_widget, &wheel);
    QTest::qWait(20);
  }
  CHECK(WaitFor([&] { return map.last_frame().first_token > first + 100; }));

  // Idle widgets stop drawing.
  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(&load_widget, &leave);
  QTest::qWait(400);
  const int64_t a = load_widget.frames(), b = map_widget.frames();
  QTest::qWait(400);
  CHECK(load_widget.frames() == a);
  CHECK(map_widget.frames() == b);
  WARN("frame times: load " << load_widget.last_frame_ms() << " ms, 100k-token map "
                            << map_widget.last_frame_ms() << " ms (build + llvmpipe render)");
}

int main(int argc, char** argv) {
  // An X server with OpenGL (Mesa llvmpipe): the caller's, or our own Xvfb.
  const char* display = std::getenv("DISPLAY");
  if (display == nullptr || *display == '\0') ::setenv("DISPLAY", gui_test::TestDisplay().c_str(), 1);
  ::setenv("QT_QPA_PLATFORM", "xcb", 1);
  QSurfaceFormat format;
  format.setVersion(3, 3);
  format.setProfile(QSurfaceFormat::CoreProfile);
  QSurfaceFormat::setDefaultFormat(format);
  QApplication::setAttribute(Qt::AA_ShareOpenGLContexts);
  QApplication app(argc, argv);
  return Catch::Session().run(argc, argv);
}
