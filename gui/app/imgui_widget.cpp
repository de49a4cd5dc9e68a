#include "gui/app/imgui_widget.h"

#include <QApplication>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QWheelEvent>
#include <array>
#include <cfloat>
#include <utility>

namespace moe::studio {
namespace {

// Qt keys ImGui cares about; io.KeysDown index = 256 + position in this table (letters use their
// Qt code, which is their ASCII upper-case code, below 256).
constexpr std::array<std::pair<int, ImGuiKey>, 16> kNamedKeys = {{
    {Qt::Key_Tab, ImGuiKey_Tab},
    {Qt::Key_Left, ImGuiKey_LeftArrow},
    {Qt::Key_Right, ImGuiKey_RightArrow},
    {Qt::Key_Up, ImGuiKey_UpArrow},
    {Qt::Key_Down, ImGuiKey_DownArrow},
    {Qt::Key_PageUp, ImGuiKey_PageUp},
    {Qt::Key_PageDown, ImGuiKey_PageDown},
    {Qt::Key_Home, ImGuiKey_Home},
    {Qt::Key_End, ImGuiKey_End},
    {Qt::Key_Insert, ImGuiKey_Insert},
    {Qt::Key_Delete, ImGuiKey_Delete},
    {Qt::Key_Backspace, ImGuiKey_Backspace},
    {Qt::Key_Space, ImGuiKey_Space},
    {Qt::Key_Return, ImGuiKey_Enter},
    {Qt::Key_Escape, ImGuiKey_Escape},
    {Qt::Key_Enter, ImGuiKey_KeyPadEnter},
}};
constexpr std::array<std::pair<int, ImGuiKey>, 6> kLetterKeys = {{
    {Qt::Key_A, ImGuiKey_A}, {Qt::Key_C, ImGuiKey_C}, {Qt::Key_V, ImGuiKey_V},
    {Qt::Key_X, ImGuiKey_X}, {Qt::Key_Y, ImGuiKey_Y}, {Qt::Key_Z, ImGuiKey_Z},
}};

int KeyIndex(int qt_key) {
  for (size_t i = 0; i < kNamedKeys.size(); ++i)
    if (kNamedKeys[i].first == qt_key) return 256 + static_cast<int>(i);
  if (qt_key >= Qt::Key_A && qt_key <= Qt::Key_Z) return qt_key;
  return -1;
}

}  // namespace

ImGuiWidget::ImGuiWidget(View* view, StudioState* state, bool dark, QWidget* parent)
    : QOpenGLWidget(parent), view_(view), state_(state), dark_(dark) {
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setMinimumSize(200, 150);
  connect(state_, &StudioState::dataChanged, this, [this] { Wake(); });
  connect(state_, &StudioState::selectionChanged, this, [this](QObject* source) {
    if (source != this) Wake();
  });
  clock_.start();
}

ImGuiWidget::~ImGuiWidget() {
  makeCurrent();
  renderer_.reset();
  doneCurrent();
}

void ImGuiWidget::SetDark(bool dark) {
  dark_ = dark;
  if (renderer_) renderer_->SetDark(dark);
  Wake();
}

void ImGuiWidget::Wake(int frames) {
  frames_left_ = std::max(frames_left_, frames);
  update();
}

void ImGuiWidget::initializeGL() {
  renderer_ = std::make_unique<ImGuiRenderer>(dark_);
  renderer_->InitGl(static_cast<float>(devicePixelRatioF()));
  ImGuiIO& io = ImGui::GetIO();
  for (size_t i = 0; i < kNamedKeys.size(); ++i)
    io.KeyMap[kNamedKeys[i].second] = 256 + static_cast<int>(i);
  for (const auto& [qt, key] : kLetterKeys) io.KeyMap[key] = qt;
  io.ConfigFlags |= ImGuiConfigFlags_NavEnableKeyboard;  // needs the key map above
  io.BackendPlatformName = "moescope-studio Qt bridge";
  io.BackendFlags |= ImGuiBackendFlags_HasMouseCursors;
}

void ImGuiWidget::paintGL() {
  if (!renderer_) return;
  QElapsedTimer frame;
  frame.start();
  const float dt = static_cast<float>(clock_.restart()) / 1000.0f;
  ImGui::SetCurrentContext(renderer_->context());
  ApplyMouse();
  const Selection before = state_->selection();
  const ImVec2 size(static_cast<float>(width()), static_cast<float>(height()));
  renderer_->Frame(size, static_cast<float>(devicePixelRatioF()), std::min(dt, 0.25f), [&] {
    DrawViewWindow(*view_, state_->data(), state_->selection(), ImVec2(0, 0), size);
  });
  // Mouse cursor shape requested by ImGui.
  switch (ImGui::GetMouseCursor()) {
    case ImGuiMouseCursor_TextInput: setCursor(Qt::IBeamCursor); break;
    case ImGuiMouseCursor_Hand: setCursor(Qt::PointingHandCursor); break;
    case ImGuiMouseCursor_ResizeEW: setCursor(Qt::SizeHorCursor); break;
    case ImGuiMouseCursor_ResizeNS: setCursor(Qt::SizeVerCursor); break;
    default: unsetCursor(); break;
  }
  last_frame_ms_ = frame.nsecsElapsed() / 1e6;
  ++frames_;
  if (!(state_->selection() == before)) state_->NotifySelectionEdited(this);
  // Keep drawing while ImGui animates or settles; otherwise sleep until the next event.
  if (frames_left_ > 0) {
    --frames_left_;
    update();
  }
}

void ImGuiWidget::Modifiers(Qt::KeyboardModifiers m) {
  ImGuiIO& io = ImGui::GetIO();
  io.KeyCtrl = m & Qt::ControlModifier;
  io.KeyShift = m & Qt::ShiftModifier;
  io.KeyAlt = m & Qt::AltModifier;
  io.KeySuper = m & Qt::MetaModifier;
}

void ImGuiWidget::QueueMouse(const MouseInput& input) {
  mouse_.push_back(input);
  Wake(3);
}

void ImGuiWidget::ApplyMouse() {
  ImGuiIO& io = ImGui::GetIO();
  bool button_applied = false;
  while (!mouse_.empty()) {
    const MouseInput& m = mouse_.front();
    if (m.button >= 0 && button_applied) break;  // the next button change gets its own frame
    io.MousePos = m.pos;
    Modifiers(m.modifiers);
    if (m.button >= 0) {
      io.MouseDown[m.button] = m.down;
      button_applied = true;
    }
    mouse_.pop_front();
  }
  if (!mouse_.empty()) frames_left_ = std::max(frames_left_, 2);
}

void ImGuiWidget::mouseMoveEvent(QMouseEvent* e) {
  const QPointF p = e->position();
  QueueMouse({ImVec2(static_cast<float>(p.x()), static_cast<float>(p.y())), -1, false,
              e->modifiers()});
}

void ImGuiWidget::MouseButton(QMouseEvent* e, bool down) {
  int button = -1;
  switch (e->button()) {
    case Qt::LeftButton: button = 0; break;
    case Qt::RightButton: button = 1; break;
    case Qt::MiddleButton: button = 2; break;
    case Qt::BackButton: button = 3; break;
    case Qt::ForwardButton: button = 4; break;
    default: return;
  }
  const QPointF p = e->position();
  QueueMouse({ImVec2(static_cast<float>(p.x()), static_cast<float>(p.y())), button, down,
              e->modifiers()});
}

void ImGuiWidget::mousePressEvent(QMouseEvent* e) { MouseButton(e, true); }
void ImGuiWidget::mouseReleaseEvent(QMouseEvent* e) { MouseButton(e, false); }
void ImGuiWidget::mouseDoubleClickEvent(QMouseEvent* e) { MouseButton(e, true); }

void ImGuiWidget::wheelEvent(QWheelEvent* e) {
  if (!renderer_) return;
  ImGui::SetCurrentContext(renderer_->context());
  ImGuiIO& io = ImGui::GetIO();
  // angleDelta: eighths of a degree, 120 per notch; pixelDelta for touchpads.
  const QPoint a = e->angleDelta();
  io.MouseWheel += a.y() / 120.0f;
  io.MouseWheelH += a.x() / 120.0f;
  Modifiers(e->modifiers());
  e->accept();
  Wake();
}

void ImGuiWidget::Key(QKeyEvent* e, bool down) {
  if (!renderer_) return;
  ImGui::SetCurrentContext(renderer_->context());
  ImGuiIO& io = ImGui::GetIO();
  Modifiers(e->modifiers());
  const int index = KeyIndex(e->key());
  if (index >= 0) io.KeysDown[index] = down;
  if (down && !e->text().isEmpty()) {
    const QString t = e->text();
    if (t.at(0).isPrint()) io.AddInputCharactersUTF8(t.toUtf8().constData());
  }
  Wake();
}

void ImGuiWidget::keyPressEvent(QKeyEvent* e) {
  Key(e, true);
  if (KeyIndex(e->key()) < 0 && e->text().isEmpty()) QOpenGLWidget::keyPressEvent(e);
}
void ImGuiWidget::keyReleaseEvent(QKeyEvent* e) { Key(e, false); }

void ImGuiWidget::leaveEvent(QEvent* e) {
  QueueMouse({ImVec2(-FLT_MAX, -FLT_MAX), -1, false, QApplication::keyboardModifiers()});
  QOpenGLWidget::leaveEvent(e);
}

void ImGuiWidget::focusOutEvent(QFocusEvent* e) {
  if (renderer_) {
    ImGui::SetCurrentContext(renderer_->context());
    ImGuiIO& io = ImGui::GetIO();
    for (bool& k : io.KeysDown) k = false;
    for (bool& b : io.MouseDown) b = false;
    mouse_.clear();
    io.KeyCtrl = io.KeyShift = io.KeyAlt = io.KeySuper = false;
    Wake();
  }
  QOpenGLWidget::focusOutEvent(e);
}

bool ImGuiWidget::event(QEvent* e) {
  // The window moved to another screen (maybe another pixel ratio): the next frame rebuilds
  // the fonts for devicePixelRatioF().
  if (e->type() == QEvent::ScreenChangeInternal) Wake();
  return QOpenGLWidget::event(e);
}

}  // namespace moe::studio
