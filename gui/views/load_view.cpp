#include "gui/views/load_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/views/csv.h"

namespace moe::studio {
namespace {

// The metric chosen, or the first of the menu's that the data has.
const ExpertMetric* Shown(const StudioData& d, Metric chosen) {
  if (const ExpertMetric* m = d.FindExpertMetric(chosen)) return m;
  for (Metric id : LoadView::Metrics())
    if (const ExpertMetric* m = d.FindExpertMetric(id)) return m;
  return nullptr;
}

}  // namespace

const std::vector<Metric>& LoadView::Metrics() {
  static const std::vector<Metric> ids = {
      Metric::kRelativeLoad, Metric::kAssignmentShare, Metric::kTokenCoverage,
      Metric::kLoadCount,    Metric::kImportanceShare, Metric::kImportance,
      Metric::kTop1Share,    Metric::kSoftLoadDerived, Metric::kDead};
  return ids;
}

ColorScale LoadView::ScaleFor(const ExpertMetric& m, const std::vector<int>& rows) const {
  double lo = INFINITY, hi = -INFINITY, base = NAN;
  bool constant_base = true;
  for (int r : rows)
    for (int l = 0; l < m.layers; ++l)
      for (int e = 0; e < m.experts; ++e) {
        const size_t i = m.Index(r, l, e);
        const double v = m.value[i];
        if (std::isnan(v)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        const double b = m.baseline[i];
        if (std::isnan(base))
          base = b;
        else if (!(std::abs(b - base) <= 1e-12 * std::max(1.0, std::abs(base))))
          constant_base = false;
      }
  ColorScale s;
  if (!std::isfinite(lo)) {
    s.min = 0;
    s.max = 1;
    return s;
  }
  if (diverging_ && constant_base && base > 0 && lo >= 0) {
    s.kind = ColorScale::Kind::kDiverging;
    s.log_ratio = true;
    s.center = base;
    // Symmetric in log2 ratio, at least 2x either way so noise near the baseline stays pale.
    const double pos = lo > 0 ? std::log2(base / lo) : 0.0;
    const double r = std::max({std::log2(std::max(hi, base) / base), lo > 0 ? pos : 0.0, 1.0});
    s.min = base / std::exp2(r);
    s.max = base * std::exp2(r);
    return s;
  }
  s.kind = ColorScale::Kind::kSequential;
  s.min = std::min(lo, 0.0);
  s.max = hi > s.min ? hi : s.min + 1;
  return s;
}

void LoadView::DrawControls(const StudioData& d, Selection& sel) {
  ImGui::SetNextItemWidth(180);
  if (ImGui::BeginCombo("metric", MetricName(metric_))) {
    for (Metric id : Metrics()) {
      const ExpertMetric* m = d.FindExpertMetric(id);
      if (m == nullptr) continue;
      if (ImGui::Selectable(m->name.c_str(), id == metric_)) metric_ = id;
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", m->description.c_str());
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  DomainCombo(d, sel);
  ImGui::SameLine();
  ImGui::Checkbox("facet by domain", &facets_);
  ImGui::SameLine();
  ImGui::Checkbox("diverging around uniform", &diverging_);
}

void LoadView::DrawTooltip(const StudioData& d, const ExpertMetric& m, int row, int layer,
                           int expert) const {
  ImGui::BeginTooltip();
  ImGui::Text("layer %d, expert %d, %s", layer, expert, DomainName(d, row).c_str());
  ImGui::Separator();
  auto line = [&](const ExpertMetric& x, bool bold) {
    const size_t i = x.Index(row, layer, expert);
    char ci[96] = "";
    if (!std::isnan(x.ci_low[i]))
      std::snprintf(ci, sizeof(ci), "  [%.4g, %.4g] %.0f%% CI", x.ci_low[i], x.ci_high[i],
                    d.ci_level * 100);
    if (bold)
      ImGui::Text("%s = %.4g%s", x.name.c_str(), x.value[i], ci);
    else
      ImGui::TextDisabled("%s = %.4g%s", x.name.c_str(), x.value[i], ci);
    if (bold && !std::isnan(x.baseline[i])) ImGui::Text("uniform baseline = %.4g", x.baseline[i]);
  };
  line(m, true);
  for (Metric other : {Metric::kLoadCount, Metric::kTokenCoverage, Metric::kImportanceShare})
    if (m.id != other)
      if (const ExpertMetric* x = d.FindExpertMetric(other)) line(*x, false);
  ImGui::TextDisabled("click: select   ctrl+click: add to selection");
  ImGui::EndTooltip();
}

void LoadView::DrawLayerBars(const StudioData& d, const ExpertMetric& m, int row, Selection& sel) {
  const int layer = std::clamp(sel.layer, 0, m.layers - 1);
  ImGui::Text("Layer %d, %s, %s", layer, m.name.c_str(), DomainName(d, row).c_str());
  const float width = std::min(ImGui::GetContentRegionAvail().x, 60.0f * m.experts + 40);
  const float height =
      std::clamp(ImGui::GetContentRegionAvail().y - ImGui::GetTextLineHeight() - 12, 60.0f, 160.0f);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  double top = 0;
  for (int e = 0; e < m.experts; ++e) {
    const size_t i = m.Index(row, layer, e);
    for (double v : {m.value[i], m.ci_high[i], m.baseline[i]})
      if (!std::isnan(v)) top = std::max(top, v);
  }
  if (top <= 0) top = 1;
  const float left = 40, slot = (width - left) / std::max(1, m.experts);
  const float label_h = ImGui::GetTextLineHeight() + 2;
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  auto y_of = [&](double v) { return p.y + height - static_cast<float>(v / top) * (height - 4); };
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", top);
  dl->AddText(ImVec2(p.x, p.y), text, buf);
  dl->AddText(ImVec2(p.x, p.y + height - ImGui::GetTextLineHeight()), text, "0");
  dl->AddLine(ImVec2(p.x + left - 2, p.y + height), ImVec2(p.x + width, p.y + height), text);
  int hovered = -1;
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  for (int e = 0; e < m.experts; ++e) {
    const size_t i = m.Index(row, layer, e);
    const float x0 = p.x + left + e * slot + slot * 0.15f,
                x1 = p.x + left + (e + 1) * slot - slot * 0.15f;
    const double v = std::isnan(m.value[i]) ? 0 : m.value[i];
    dl->AddRectFilled(ImVec2(x0, y_of(v)), ImVec2(x1, p.y + height), ExpertColor(e, m.experts));
    if (!std::isnan(m.ci_low[i])) {
      const float xc = (x0 + x1) / 2;
      dl->AddLine(ImVec2(xc, y_of(m.ci_low[i])), ImVec2(xc, y_of(m.ci_high[i])), text, 1.5f);
      dl->AddLine(ImVec2(xc - 3, y_of(m.ci_low[i])), ImVec2(xc + 3, y_of(m.ci_low[i])), text);
      dl->AddLine(ImVec2(xc - 3, y_of(m.ci_high[i])), ImVec2(xc + 3, y_of(m.ci_high[i])), text);
    }
    if (sel.layer == layer && sel.HasExpert(e))
      dl->AddRect(ImVec2(x0 - 2, y_of(v) - 2), ImVec2(x1 + 2, p.y + height + 2), text, 0, 0, 2);
    if (mouse.x >= x0 && mouse.x < x1 && mouse.y >= p.y && mouse.y < p.y + height + label_h)
      hovered = e;
    char id[16];
    std::snprintf(id, sizeof(id), "%d", e);
    const float tw = ImGui::CalcTextSize(id).x;
    if (tw < slot || e % std::max(1, static_cast<int>(std::ceil((tw + 4) / slot))) == 0)
      dl->AddText(ImVec2((x0 + x1 - tw) / 2, p.y + height + 2), text, id);
  }
  // Baseline: a dashed line.
  const double base = m.baseline[m.Index(row, layer, 0)];
  if (!std::isnan(base)) {
    const float y = y_of(base);
    for (float x = p.x + left; x < p.x + width; x += 8)
      dl->AddLine(ImVec2(x, y), ImVec2(std::min(x + 4, p.x + width), y), text, 1.5f);
    dl->AddText(ImVec2(p.x, y - ImGui::GetTextLineHeight() / 2), text, "unif.");
  }
  ImGui::InvisibleButton("bars", ImVec2(width, height + label_h + 2));
  if (hovered >= 0 && ImGui::IsItemHovered()) {
    DrawTooltip(d, m, row, layer, hovered);
    if (ImGui::IsItemClicked(ImGuiMouseButton_Left)) ClickExpert(sel, layer, hovered);
  }
}

void LoadView::Draw(const StudioData& d, Selection& sel) {
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  const ExpertMetric* m = Shown(d, metric_);
  if (m == nullptr) {
    ImGui::TextDisabled("The statistics have no load metrics.");
    return;
  }
  metric_ = m->id;
  DrawControls(d, sel);

  const int L = m->layers, E = m->experts;
  std::vector<std::string> rows;
  for (int l = 0; l < L; ++l) rows.push_back(std::string("L").append(std::to_string(l)));
  auto cell_selected = [&](int l, int e) { return l == sel.layer && sel.HasExpert(e); };

  if (facets_) {
    std::vector<int> all_rows;
    for (int r = 0; r <= d.num_domains(); ++r) all_rows.push_back(r);
    const ColorScale scale = ScaleFor(*m, all_rows);
    const float avail = ImGui::GetContentRegionAvail().x;
    const int per_line = std::max(1, std::min<int>(static_cast<int>(all_rows.size()), 4));
    const ImVec2 cell = FitCells(ImVec2(avail / per_line - 16, 220), L, E, 30, 3, 20);
    int col = 0;
    for (int r : all_rows) {
      if (col > 0) ImGui::SameLine();
      ImGui::BeginGroup();
      const bool current = r == DomainRow(d, sel.domain);
      ImGui::TextColored(
          current ? ImVec4(1, 0.8f, 0.2f, 1) : ImGui::GetStyleColorVec4(ImGuiCol_Text), "%s",
          DomainName(d, r).c_str());
      HeatmapSpec spec;
      const std::string id = "facet" + std::to_string(r);
      spec.id = id.c_str();
      spec.rows = L;
      spec.cols = E;
      spec.value = [&](int l, int e) { return m->At(r, l, e); };
      spec.scale = scale;
      spec.cell = cell;
      spec.row_labels = rows;
      spec.selected = [&](int l, int e) { return current && cell_selected(l, e); };
      const HeatmapHit hit = DrawHeatmap(spec);
      if (current) last_ = hit;
      if (hit.hovered) {
        DrawTooltip(d, *m, r, hit.row, hit.col);
        if (hit.clicked) {
          sel.domain = r == d.num_domains() ? -1 : r;
          ClickExpert(sel, hit.row, hit.col);
        }
      }
      ImGui::EndGroup();
      col = (col + 1) % per_line;
    }
    DrawLegend(scale, std::min(avail, 360.0f),
               m->baseline[m->Index(DomainRow(d, sel.domain), 0, 0)], "uniform");
  } else {
    const int row = DomainRow(d, sel.domain);
    const ColorScale scale = ScaleFor(*m, {row});
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const ImVec2 cell = FitCells(ImVec2(avail.x, avail.y - 260), L, E, 36, 6, 72);
    HeatmapSpec spec;
    spec.id = "load";
    spec.rows = L;
    spec.cols = E;
    spec.value = [&](int l, int e) { return m->At(row, l, e); };
    spec.scale = scale;
    spec.cell = cell;
    spec.row_labels = rows;
    spec.selected = cell_selected;
    last_ = DrawHeatmap(spec);
    if (last_.hovered) {
      DrawTooltip(d, *m, row, last_.row, last_.col);
      if (last_.clicked) ClickExpert(sel, last_.row, last_.col);
    }
    ImGui::Spacing();
    DrawLegend(scale, LegendWidth(last_), m->baseline[m->Index(row, 0, 0)], "uniform");
  }
  ImGui::Separator();
  DrawLayerBars(d, *m, DomainRow(d, sel.domain), sel);
}

void LoadView::WriteCsv(const StudioData& d, const Selection&, std::ostream& out) const {
  out << "metric,domain,layer,expert,value,ci_low,ci_high,baseline,n\n";
  const ExpertMetric* m = Shown(d, metric_);
  if (m == nullptr) return;
  for (int r = 0; r < m->domains; ++r)
    for (int l = 0; l < m->layers; ++l)
      for (int e = 0; e < m->experts; ++e) {
        const size_t i = m->Index(r, l, e);
        out << m->name << ',' << CsvField(r < d.num_domains() ? d.domains[r] : "all") << ',' << l
            << ',' << e << ',' << CsvNumber(m->value[i]) << ',' << CsvNumber(m->ci_low[i]) << ','
            << CsvNumber(m->ci_high[i]) << ',' << CsvNumber(m->baseline[i]) << ','
            << CsvNumber(m->n[i]) << '\n';
      }
}

}  // namespace moe::studio
