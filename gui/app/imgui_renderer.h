#pragma once
// One Dear ImGui context drawn with imgui_impl_opengl3 into whatever framebuffer is bound in the
// current OpenGL context: the QOpenGLWidget's (the app) or an offscreen FBO (--export-views).
// Qt drives the frames, so no ImGui platform backend is used; ImGuiWidget feeds input.
#include <imgui.h>

#include <functional>

namespace moe::studio {

class ImGuiRenderer {
 public:
  // Creates the ImGui context (no GL calls yet).
  explicit ImGuiRenderer(bool dark);
  // Must run with the GL context that InitGl ran in current.
  ~ImGuiRenderer();
  ImGuiRenderer(const ImGuiRenderer&) = delete;
  ImGuiRenderer& operator=(const ImGuiRenderer&) = delete;

  // Creates the GL objects; the GL context must be current. Returns false when the GL backend
  // could not start (no OpenGL 3.3).
  bool InitGl(float pixel_ratio);
  ImGuiContext* context() const { return context_; }

  // Makes this context current, runs one frame of `draw` at `size` logical pixels and renders
  // it into the bound framebuffer (cleared first) of size * pixel_ratio physical pixels.
  void Frame(ImVec2 size, float pixel_ratio, float delta_seconds, const std::function<void()>& draw);
  void SetDark(bool dark);

 private:
  void SetPixelRatio(float ratio);

  ImGuiContext* context_ = nullptr;
  bool gl_ready_ = false;
  float pixel_ratio_ = 0;
  bool dark_ = true;
};

}  // namespace moe::studio
