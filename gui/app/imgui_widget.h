#pragma once
// Hosts one view in a QOpenGLWidget: our small Qt -> Dear ImGui bridge (ImGui 1.86's input API:
// io.MousePos/MouseDown/MouseWheel, io.KeysDown through io.KeyMap, AddInputCharactersUTF8),
// HiDPI through devicePixelRatio, and frames only when something happened: an input event, a
// data or selection change, or the few frames ImGui needs to settle after one.
#include <QElapsedTimer>
#include <deque>
#include <QOpenGLWidget>
#include <memory>

#include "gui/app/imgui_renderer.h"
#include "gui/app/studio_state.h"
#include "gui/views/view.h"

namespace moe::studio {

class ImGuiWidget : public QOpenGLWidget {
  Q_OBJECT
 public:
  ImGuiWidget(View* view, StudioState* state, bool dark, QWidget* parent = nullptr);
  ~ImGuiWidget() override;

  View* view() const { return view_; }
  void SetDark(bool dark);
  // Schedules `frames` repaints (ImGui settles hover and layout over a couple of frames).
  void Wake(int frames = 2);
  // Milliseconds the last frame took to build and render (CPU side).
  double last_frame_ms() const { return last_frame_ms_; }
  // Frames drawn so far, and this widget's ImGui context (null before initializeGL); for tests.
  int64_t frames() const { return frames_; }
  ImGuiContext* imgui_context() const { return renderer_ ? renderer_->context() : nullptr; }

 protected:
  void initializeGL() override;
  void paintGL() override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void keyReleaseEvent(QKeyEvent* e) override;
  void leaveEvent(QEvent* e) override;
  void focusOutEvent(QFocusEvent* e) override;
  bool event(QEvent* e) override;

 private:
  // Mouse input waits in a queue: ImGui 1.86 polls io.MouseDown once per frame, so a press and
  // a release that arrive together must reach it in separate frames or the click is lost.
  struct MouseInput {
    ImVec2 pos;
    int button = -1;  // -1: a move
    bool down = false;
    Qt::KeyboardModifiers modifiers;
  };
  void QueueMouse(const MouseInput& input);
  void ApplyMouse();  // moves, then at most one button change, per frame
  void Key(QKeyEvent* e, bool down);
  void Modifiers(Qt::KeyboardModifiers m);
  void MouseButton(QMouseEvent* e, bool down);

  View* view_;
  StudioState* state_;
  bool dark_;
  std::unique_ptr<ImGuiRenderer> renderer_;
  QElapsedTimer clock_;
  int frames_left_ = 2;
  std::deque<MouseInput> mouse_;
  double last_frame_ms_ = 0;
  int64_t frames_ = 0;
};

}  // namespace moe::studio
