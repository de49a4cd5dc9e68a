#include "gui/app/imgui_renderer.h"

#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <backends/imgui_impl_opengl3.h>

#include "gui/views/style.h"

namespace moe::studio {

namespace {
constexpr float kFontSize = 15.0f;
}

ImGuiRenderer::ImGuiRenderer(bool dark) : dark_(dark) {
  ImGuiContext* previous = ImGui::GetCurrentContext();
  context_ = ImGui::CreateContext();
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // the shell persists layout through QSettings
  io.LogFilename = nullptr;
  ApplyStyle(dark_);
  if (previous != nullptr) ImGui::SetCurrentContext(previous);
}

ImGuiRenderer::~ImGuiRenderer() {
  ImGui::SetCurrentContext(context_);
  if (gl_ready_) ImGui_ImplOpenGL3_Shutdown();
  ImGui::DestroyContext(context_);
}

bool ImGuiRenderer::InitGl(float pixel_ratio) {
  ImGui::SetCurrentContext(context_);
  SetupFonts(ImGui::GetIO(), kFontSize, pixel_ratio);
  pixel_ratio_ = pixel_ratio;
  gl_ready_ = ImGui_ImplOpenGL3_Init("#version 330 core");
  return gl_ready_;
}

void ImGuiRenderer::SetPixelRatio(float ratio) {
  if (ratio == pixel_ratio_) return;
  pixel_ratio_ = ratio;
  SetupFonts(ImGui::GetIO(), kFontSize, ratio);
  if (gl_ready_) {
    ImGui_ImplOpenGL3_DestroyFontsTexture();
    ImGui_ImplOpenGL3_CreateFontsTexture();
  }
}

void ImGuiRenderer::SetDark(bool dark) {
  if (dark == dark_) return;
  dark_ = dark;
  ImGui::SetCurrentContext(context_);
  ApplyStyle(dark_);
}

void ImGuiRenderer::Frame(ImVec2 size, float pixel_ratio, float dt,
                          const std::function<void()>& draw) {
  ImGui::SetCurrentContext(context_);
  SetPixelRatio(pixel_ratio);
  ImGuiIO& io = ImGui::GetIO();
  io.DisplaySize = size;
  io.DisplayFramebufferScale = ImVec2(pixel_ratio, pixel_ratio);
  io.DeltaTime = dt > 0 ? dt : 1.0f / 60;
  if (gl_ready_) ImGui_ImplOpenGL3_NewFrame();
  ImGui::NewFrame();
  draw();
  ImGui::Render();
  QOpenGLFunctions* gl = QOpenGLContext::currentContext()->functions();
  gl->glViewport(0, 0, static_cast<int>(size.x * pixel_ratio), static_cast<int>(size.y * pixel_ratio));
  const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
  gl->glClearColor(bg.x, bg.y, bg.z, 1.0f);
  gl->glClear(GL_COLOR_BUFFER_BIT);
  if (gl_ready_) ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

}  // namespace moe::studio
