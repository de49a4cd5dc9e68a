#include "headless_views.h"

#include <cmath>
#include <string>

#include "gui/views/style.h"

namespace moe::studio {

Headless::Headless(ImVec2 size) : size_(size) {
  context_ = ImGui::CreateContext();
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;
  io.LogFilename = nullptr;
  io.DisplaySize = size;
  io.DeltaTime = 1.0f / 60;
  SetupFonts(io, 15, 1);
  unsigned char* pixels = nullptr;
  int w = 0, h = 0;
  io.Fonts->GetTexDataAsRGBA32(&pixels, &w, &h);  // builds the atlas; no texture is made
  ApplyStyle(true);
}

Headless::~Headless() {
  ImGui::DestroyContext(context_);
}

void Headless::Frame(View& view, const StudioData& data, Selection& selection, ImVec2 mouse,
                     bool down, bool ctrl) {
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.MousePos = mouse;
  io.MouseDown[0] = down;
  io.KeyCtrl = ctrl;
  ImGui::NewFrame();
  DrawViewWindow(view, data, selection, ImVec2(0, 0), size_);
  ImGui::Render();
}

StudioData MakeData(int M, int L, int E) {
  StudioData d;
  d.trace.info.path = "synthetic.h5";
  d.trace.info.num_layers = L;
  d.trace.info.num_experts = E;
  d.trace.info.top_k = 2;
  d.trace.documents = 3;
  d.trace.tokens = 300;
  d.trace.info.complete = true;
  d.trace.info.format_version = 1;
  d.trace.config = {{"vocab_size", "512"}, {"num_experts", std::to_string(E)}};
  for (int m = 0; m < M; ++m) {
    d.domains.push_back("domain" + std::to_string(m));
    d.domain_documents.push_back(1);
    d.domain_tokens.push_back(100);
  }
  for (int i = 0; i < 3; ++i)
    d.documents.push_back({i, static_cast<int16_t>(i % M), 100, "doc" + std::to_string(i)});
  auto grid = [&](Metric id, double base, bool domain_rows_only) {
    ExpertMetric g;
    g.id = id;
    g.name = MetricName(id);
    g.description = g.name;
    g.domains = M + 1;
    g.layers = L;
    g.experts = E;
    const size_t n = static_cast<size_t>(M + 1) * L * E;
    for (auto* v : {&g.value, &g.ci_low, &g.ci_high, &g.baseline, &g.n, &g.q})
      v->assign(n, kNoValue);
    for (int r = 0; r <= M; ++r)
      for (int l = 0; l < L; ++l)
        for (int e = 0; e < E; ++e) {
          if (domain_rows_only && r == M) continue;
          const size_t i = g.Index(r, l, e);
          g.value[i] = 0.25 + 0.5 * ((r + l + e) % 4);
          g.ci_low[i] = g.value[i] * 0.9;
          g.ci_high[i] = g.value[i] * 1.1;
          g.baseline[i] = base;
          g.n[i] = 100;
        }
    return g;
  };
  d.expert_metrics.push_back(grid(Metric::kRelativeLoad, 1.0, false));
  d.expert_metrics.push_back(grid(Metric::kLoadCount, 50.0, false));
  d.expert_metrics.push_back(grid(Metric::kDomainSpecLiftTopk, 1.0, true));
  ExpertMetric p = grid(Metric::kDomainSpecPermPTopk, kNoValue, true);
  for (double& v : p.value)
    if (!std::isnan(v)) v = v < 0.5 ? 0.01 : 0.5;  // significant where the lift is 0.25
  p.q = p.value;                                   // as if each cell were its own family
  d.expert_metrics.push_back(p);
  // Pair tables: every expert got 100 tokens; off-diagonal counts follow a pattern; the
  // seriation orders are made-up permutations (reversed rows, columns rotated by one) so that a
  // view that ignores them draws different cells.
  PairTables& t = d.pairs;
  t.domains = M + 1;
  t.layers = L;
  t.experts = E;
  for (int r = 0; r <= M; ++r) {
    for (int l = 0; l < L; ++l) {
      for (int i = 0; i < E; ++i)
        for (int j = 0; j < E; ++j) {
          const int64_t c = i == j ? 100 : 10 + ((i + j) * 7 + l + r) % 20;
          t.coactivation.push_back(c);
          t.coactivation_rate.push_back(i == j ? kNoValue : c / 100.0);
        }
      for (int k = 0; k < E; ++k) t.coactivation_order.push_back(E - 1 - k);
    }
    for (int l = 0; l + 1 < L; ++l) {
      for (int i = 0; i < E; ++i)
        for (int j = 0; j < E; ++j) {
          const int64_t c = 5 + (i * 3 + j * 5 + l + r) % 30;
          t.transitions.push_back(c);
          t.transition_rate.push_back(c / 100.0);
        }
      for (int k = 0; k < E; ++k) {
        t.transition_row_order.push_back(E - 1 - k);
        t.transition_col_order.push_back((k + 1) % E);
      }
    }
  }
  d.bootstrap = 10;
  d.permutations = 10;
  d.ci_level = 0.95;
  return d;
}

std::shared_ptr<DocumentRouting> MakeDocument(int64_t index, int64_t T, int L, int E) {
  auto doc = std::make_shared<DocumentRouting>();
  doc->index = index;
  doc->layers = L;
  doc->kmax = 2;
  for (int64_t t = 0; t < T; ++t) {
    doc->token_id.push_back(static_cast<int32_t>(t % 500));
    doc->position.push_back(static_cast<int32_t>(t));
    doc->nll.push_back(t + 1 < T ? static_cast<float>(t % 5) : NAN);
    doc->text.push_back(std::string("t").append(std::to_string(t)));
    for (int l = 0; l < L; ++l) {
      doc->ids.push_back(static_cast<int16_t>((t + l) % E));
      doc->ids.push_back(static_cast<int16_t>((t + l + 1) % E));
      doc->weights.push_back(0.7f);
      doc->weights.push_back(0.3f);
    }
  }
  return doc;
}

}  // namespace moe::studio
