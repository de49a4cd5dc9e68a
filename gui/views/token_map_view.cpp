#include "gui/views/token_map_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/views/colors.h"
#include "gui/views/csv.h"
#include "gui/views/domains.h"

namespace moe::studio {
namespace {

constexpr float kPadX = 2, kPadY = 1, kGap = 1, kUnderline = 3;
const char* kNewlineMark = "\xe2\x86\xb5";  // U+21B5

// ln V, the surprisal of a uniform guess: an underline at full strength.
double UniformSurprisal(const StudioData& d) {
  for (const auto& [k, v] : d.trace.config)
    if (k == "vocab_size") {
      const double V = std::atof(v.c_str());
      if (V > 1) return std::log(V);
    }
  return 10.0;
}

std::string DocumentLabel(const StudioData& d, const DocumentEntry& e) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "#%lld  ", static_cast<long long>(e.index));
  std::string s = buf + e.source_id + "  (" +
                  (e.domain >= 0 && e.domain < d.num_domains() ? d.domains[e.domain] : "?") + ", " +
                  std::to_string(e.tokens) + " tokens)";
  return s;
}

// How this frame paints the token boxes.
struct TokenPaint {
  int layer = 0;     // a box's colour: its first expert at this layer
  int experts = 0;   // of the trace, for the palette
  double full = 10;  // the surprisal drawn at full strength (UniformSurprisal)
  ImU32 text = 0;    // the theme's text colour
};

// Token t's box from a to b: its first expert's colour (dimmed when the selected experts are
// elsewhere), its text, the surprisal underline and the selection outline.
void DrawTokenBox(ImDrawList* dl, const DocumentRouting& doc, int64_t t, ImVec2 a, ImVec2 b,
                  const char* shown, const TokenPaint& paint, const Selection& sel) {
  const size_t i = static_cast<size_t>(t);
  const int layer = paint.layer;
  const int top1 = doc.layers > 0 ? doc.Top1(t, layer) : -1;
  bool routed_to_selection = sel.experts.empty();
  if (!routed_to_selection && sel.layer == layer)
    for (int k = 0; k < doc.kmax; ++k)
      routed_to_selection |= sel.HasExpert(doc.ids[doc.Row(t, layer) + k]);
  ImU32 bg = ExpertColor(top1, paint.experts);
  ImU32 fg = ContrastText(bg);
  if (!routed_to_selection) {
    bg = (bg & ~IM_COL32_A_MASK) | IM_COL32(0, 0, 0, 50);
    fg = (paint.text & ~IM_COL32_A_MASK) | IM_COL32(0, 0, 0, 110);
  }
  dl->AddRectFilled(a, b, bg);
  dl->AddText(ImVec2(a.x + kPadX, a.y + kPadY * 0.5f), fg, shown);
  // Surprisal of this token: the NLL the trace stores at the previous position.
  if (t > 0 && !std::isnan(doc.nll[i - 1])) {
    const double s = std::clamp(doc.nll[i - 1] / paint.full, 0.0, 1.0);
    const ImU32 u = IM_COL32(230, 30, 30, static_cast<int>(std::lround(40 + 215 * s)));
    dl->AddRectFilled(ImVec2(a.x, b.y + 1),
                      ImVec2(b.x, b.y + 1 + kUnderline * static_cast<float>(0.34 + 0.66 * s)), u);
  }
  if (sel.HasTokens() && t >= sel.token_begin && t < sel.token_end)
    dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + kUnderline + 2), paint.text, 0, 0,
                2);
}

// A click on token t selects it; with Shift, it extends the selected range to it.
void ClickToken(Selection& sel, int64_t t) {
  if (ImGui::GetIO().KeyShift && sel.HasTokens()) {
    sel.token_begin = std::min(sel.token_begin, t);
    sel.token_end = std::max(sel.token_end, t + 1);
  } else {
    sel.token_begin = t;
    sel.token_end = t + 1;
  }
}

}  // namespace

void TokenMapView::BuildLayout(const DocumentRouting& doc, float wrap_width) {
  layout_ = Layout{};
  layout_.doc = &doc;
  layout_.wrap_width = wrap_width;
  layout_.font_size = ImGui::GetFontSize();
  const int64_t T = doc.size();
  layout_.shown.resize(static_cast<size_t>(T));
  layout_.x.resize(static_cast<size_t>(T));
  layout_.width.resize(static_cast<size_t>(T));
  layout_.line_start.push_back(0);
  float x = 0;
  for (int64_t t = 0; t < T; ++t) {
    const std::string& raw = doc.text[static_cast<size_t>(t)];
    std::string shown;
    bool breaks = false;
    for (char c : raw) {
      if (c == '\n') {
        shown += kNewlineMark;
        breaks = true;
      } else if (c == '\t') {
        shown += "    ";
      } else {
        shown += c;
      }
    }
    const float w = ImGui::CalcTextSize(shown.c_str()).x + 2 * kPadX;
    if (x > 0 && x + w > wrap_width) {
      layout_.line_start.push_back(t);
      x = 0;
    }
    layout_.x[static_cast<size_t>(t)] = x;
    layout_.width[static_cast<size_t>(t)] = w;
    layout_.shown[static_cast<size_t>(t)] = std::move(shown);
    x += w + kGap;
    if (breaks && t + 1 < T) {
      layout_.line_start.push_back(t + 1);
      x = 0;
    }
  }
  layout_.line_start.push_back(T);
}

int64_t TokenMapView::LineOf(int64_t t) const {
  const auto& s = layout_.line_start;
  auto it = std::upper_bound(s.begin(), s.end() - 1, t);
  return static_cast<int64_t>(it - s.begin()) - 1;
}

bool TokenMapView::TokenRect(int64_t t, ImVec2* min, ImVec2* max) const {
  for (const auto& [token, box] : drawn_)
    if (token == t) {
      *min = box.first;
      *max = box.second;
      return true;
    }
  return false;
}

void TokenMapView::DrawHeader(const StudioData& d, Selection& sel) {
  const int64_t D = static_cast<int64_t>(d.documents.size());
  if (ImGui::ArrowButton("prev", ImGuiDir_Left) && sel.document > 0) {
    --sel.document;
    sel.token_begin = sel.token_end = 0;
  }
  ImGui::SameLine();
  if (ImGui::ArrowButton("next", ImGuiDir_Right) && sel.document + 1 < D) {
    ++sel.document;
    sel.token_begin = sel.token_end = 0;
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(std::min(420.0f, ImGui::GetContentRegionAvail().x * 0.5f));
  const std::string current = sel.document >= 0 && sel.document < D
                                  ? DocumentLabel(d, d.documents[static_cast<size_t>(sel.document)])
                                  : std::string("(no document)");
  if (ImGui::BeginCombo("document", current.c_str(), ImGuiComboFlags_HeightLarge)) {
    ImGuiListClipper clipper;
    clipper.Begin(static_cast<int>(D));
    while (clipper.Step())
      for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i) {
        const std::string label = DocumentLabel(d, d.documents[static_cast<size_t>(i)]);
        if (ImGui::Selectable(label.c_str(), i == sel.document)) {
          sel.document = i;
          sel.token_begin = sel.token_end = 0;
        }
      }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  const int L = std::max(1, d.trace.info.num_layers);
  ImGui::SetNextItemWidth(140);
  sel.layer = std::clamp(sel.layer, 0, L - 1);
  ImGui::SliderInt("layer", &sel.layer, 0, L - 1);

  // Expert legend: a swatch per expert; click selects, Ctrl+click adds.
  const int E = d.trace.info.num_experts;
  ImGui::TextUnformatted("first expert:");
  const float right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
  for (int e = 0; e < E; ++e) {
    // Wrap the swatches when the next one would not fit.
    char label[16];
    std::snprintf(label, sizeof(label), "%d", e);
    const float w = ImGui::CalcTextSize(label).x + 2 * ImGui::GetStyle().FramePadding.x;
    if (ImGui::GetItemRectMax().x + 4 + w <= right) ImGui::SameLine(0, 4);
    const ImU32 c = ExpertColor(e, E);
    ImGui::PushStyleColor(ImGuiCol_Button, c);
    ImGui::PushStyleColor(ImGuiCol_ButtonHovered, c);
    ImGui::PushStyleColor(ImGuiCol_Text, ContrastText(c));
    const bool selected = sel.HasExpert(e);
    if (selected) {
      ImGui::PushStyleVar(ImGuiStyleVar_FrameBorderSize, 2);
      ImGui::PushStyleColor(ImGuiCol_Border, ImGui::GetColorU32(ImGuiCol_Text));
    }
    if (ImGui::SmallButton(label)) {
      if (ImGui::GetIO().KeyCtrl)
        sel.ToggleExpert(e);
      else if (selected && sel.experts.size() == 1)
        sel.experts.clear();
      else
        sel.experts = {e};
    }
    if (selected) {
      ImGui::PopStyleVar();
      ImGui::PopStyleColor();
    }
    ImGui::PopStyleColor(3);
  }
  if (!sel.experts.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("(tokens not routed to the selected experts are dimmed)");
  }
}

void TokenMapView::DrawTokenTooltip(const StudioData& d, const DocumentRouting& doc,
                                    int64_t t) const {
  const size_t i = static_cast<size_t>(t);
  ImGui::BeginTooltip();
  ImGui::Text("'%s'  id %d, position %d, token %lld of %lld", layout_.shown[i].c_str(),
              doc.token_id[i], doc.position[i], static_cast<long long>(t),
              static_cast<long long>(doc.size()));
  if (doc.text[i].empty()) ImGui::TextDisabled("(a byte of the character on the token before)");
  if (t > 0 && !std::isnan(doc.nll[i - 1]))
    ImGui::Text("surprisal -log p(this token) = %.3f nats", doc.nll[i - 1]);
  if (!std::isnan(doc.nll[i])) ImGui::TextDisabled("NLL of the next token = %.3f", doc.nll[i]);
  ImGui::Separator();
  const int E = d.trace.info.num_experts;
  if (ImGui::BeginTable("topk", 2, ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg)) {
    for (int l = 0; l < doc.layers; ++l) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::Text("L%d", l);
      ImGui::TableNextColumn();
      const size_t row = doc.Row(t, l);
      for (int k = 0; k < doc.kmax; ++k) {
        const int e = doc.ids[row + k];
        if (e < 0) continue;
        if (k > 0) ImGui::SameLine(0, 10);
        ImGui::PushStyleColor(ImGuiCol_Text, ExpertColor(e, E));
        ImGui::TextUnformatted("\xe2\x96\xa0");
        ImGui::PopStyleColor();
        ImGui::SameLine(0, 3);
        ImGui::Text("e%d %.3f", e, doc.weights[row + k]);
      }
    }
    ImGui::EndTable();
  }
  ImGui::EndTooltip();
}

int64_t TokenMapView::DrawTokens(const StudioData& d, const DocumentRouting& doc,
                                 const Selection& sel, int layer, double full) {
  const float wrap = std::max(50.0f, ImGui::GetContentRegionAvail().x);
  if (layout_.doc != &doc || layout_.wrap_width != wrap ||
      layout_.font_size != ImGui::GetFontSize())
    BuildLayout(doc, wrap);
  const int64_t lines = static_cast<int64_t>(layout_.line_start.size()) - 1;
  stats_.lines = lines;
  const float line_h = ImGui::GetFontSize() + 2 * kPadY + kUnderline + 2;
  if (scroll_to_ >= 0 && scroll_to_ < doc.size()) {
    ImGui::SetScrollY(LineOf(scroll_to_) * line_h);
    scroll_to_ = -1;
  }

  ImDrawList* dl = ImGui::GetWindowDrawList();
  const TokenPaint paint{layer, d.trace.info.num_experts, full, ImGui::GetColorU32(ImGuiCol_Text)};
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const bool child_hovered = ImGui::IsWindowHovered();
  ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0, 0));
  ImGuiListClipper clipper;
  clipper.Begin(static_cast<int>(lines), line_h);
  int64_t hovered = -1;
  while (clipper.Step()) {
    for (int line = clipper.DisplayStart; line < clipper.DisplayEnd; ++line) {
      const ImVec2 origin = ImGui::GetCursorScreenPos();
      const int64_t begin = layout_.line_start[static_cast<size_t>(line)];
      const int64_t end = layout_.line_start[static_cast<size_t>(line) + 1];
      for (int64_t t = begin; t < end; ++t) {
        const size_t i = static_cast<size_t>(t);
        const ImVec2 a(origin.x + layout_.x[i], origin.y + kPadY);
        const ImVec2 b(a.x + layout_.width[i], a.y + ImGui::GetFontSize() + kPadY);
        DrawTokenBox(dl, doc, t, a, b, layout_.shown[i].c_str(), paint, sel);
        if (child_hovered && mouse.x >= a.x && mouse.x < b.x + kGap && mouse.y >= origin.y &&
            mouse.y < origin.y + line_h)
          hovered = t;
        if (stats_.first_token < 0) stats_.first_token = t;
        ++stats_.drawn_tokens;
        drawn_.push_back({t, {a, b}});
      }
      ImGui::Dummy(ImVec2(wrap, line_h));
    }
  }
  clipper.End();
  ImGui::PopStyleVar();
  return hovered;
}

void TokenMapView::Draw(const StudioData& d, Selection& sel) {
  stats_ = FrameStats{};
  drawn_.clear();
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  DrawHeader(d, sel);
  const DocumentRouting* doc = d.document.get();
  if (d.documents.empty()) {
    ImGui::TextDisabled("The trace has no documents (yet).");
    return;
  }
  if (doc == nullptr || doc->index != sel.document) {
    ImGui::TextDisabled("Loading document %lld ...", static_cast<long long>(sel.document));
    return;
  }
  const int layer = std::clamp(sel.layer, 0, std::max(0, doc->layers - 1));
  const double full = UniformSurprisal(d);
  ImGui::TextDisabled(
      "%s, %lld tokens; box colour: first expert at layer %d; underline: "
      "surprisal (full red = ln V = %.1f nats)",
      DomainName(d, doc->domain).c_str(), static_cast<long long>(doc->size()), layer, full);

  ImGui::BeginChild("tokens", ImVec2(0, 0), true);
  const int64_t hovered = DrawTokens(d, *doc, sel, layer, full);
  stats_.hovered_token = hovered;
  if (hovered >= 0) {
    DrawTokenTooltip(d, *doc, hovered);
    if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) ClickToken(sel, hovered);
  }
  ImGui::EndChild();
}

void TokenMapView::WriteCsv(const StudioData& d, const Selection&, std::ostream& out) const {
  out << "document,token,position,token_id,text,nll_next,layer,rank,expert,weight\n";
  const DocumentRouting* doc = d.document.get();
  if (doc == nullptr) return;
  for (int64_t t = 0; t < doc->size(); ++t) {
    const size_t i = static_cast<size_t>(t);
    const std::string prefix = std::to_string(doc->index) + ',' + std::to_string(t) + ',' +
                               std::to_string(doc->position[i]) + ',' +
                               std::to_string(doc->token_id[i]) + ',' + CsvField(doc->text[i]) +
                               ',' + CsvNumber(doc->nll[i]) + ',';
    for (int l = 0; l < doc->layers; ++l)
      for (int k = 0; k < doc->kmax; ++k) {
        const size_t r = doc->Row(t, l) + k;
        if (doc->ids[r] < 0) continue;
        out << prefix << l << ',' << k << ',' << doc->ids[r] << ',' << CsvNumber(doc->weights[r])
            << '\n';
      }
  }
}

}  // namespace moe::studio
