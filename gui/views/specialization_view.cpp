#include "gui/views/specialization_view.h"

#include <algorithm>
#include <cmath>

#include "gui/views/csv.h"
#include "gui/views/domains.h"

namespace moe::studio {

ColorScale SpecializationView::ScaleFor(const ExpertMetric& lift, int layer) {
  double lo = INFINITY, hi = -INFINITY;
  for (int r = 0; r + 1 < lift.domains; ++r)
    for (int e = 0; e < lift.experts; ++e) {
      const double v = lift.At(r, layer, e);
      if (std::isnan(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  ColorScale s;
  s.kind = ColorScale::Kind::kDiverging;
  s.symmetric = false;
  if (!(lo <= hi)) {  // nothing to show
    lo = 0;
    hi = 2;
  }
  s.min = lo;
  s.max = hi;
  s.center = std::clamp(1.0, lo, hi);
  return s;
}

void SpecializationView::Draw(const StudioData& d, Selection& sel) {
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  const ExpertMetric* lift = d.FindExpertMetric(LiftMetric());
  const ExpertMetric* p = d.FindExpertMetric(PMetric());
  if (lift == nullptr || d.num_domains() == 0) {
    ImGui::TextDisabled("The statistics have no domain specialization.");
    return;
  }
  const int L = lift->layers, E = lift->experts, M = d.num_domains();
  sel.layer = std::clamp(sel.layer, 0, L - 1);
  ImGui::SetNextItemWidth(160);
  ImGui::SliderInt("layer", &sel.layer, 0, L - 1);
  ImGui::SameLine();
  int which = static_cast<int>(lift_);
  ImGui::RadioButton("top-k", &which, 0);
  ImGui::SameLine();
  ImGui::RadioButton("first choice", &which, 1);
  if (d.FindExpertMetric(Metric::kDomainSpecLiftToken) != nullptr) {
    ImGui::SameLine();
    ImGui::RadioButton("token-controlled", &which, 2);
  }
  lift_ = static_cast<Lift>(which);
  if (p != nullptr) {
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    ImGui::SliderFloat("FDR", &alpha_, 0.001f, 0.2f, "%.3f", ImGuiSliderFlags_Logarithmic);
  }
  lift = d.FindExpertMetric(LiftMetric());
  p = d.FindExpertMetric(PMetric());
  if (lift == nullptr) return;
  const int layer = sel.layer;

  HeatmapSpec spec;
  spec.id = "lift";
  spec.rows = M;
  spec.cols = E;
  spec.value = [&](int m, int e) { return lift->At(m, layer, e); };
  spec.scale = ScaleFor(*lift, layer);
  spec.row_labels = d.domains;
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  float label_w = 0;
  for (const std::string& n : d.domains)
    label_w = std::max(label_w, ImGui::CalcTextSize(n.c_str()).x);
  spec.cell = FitCells(ImVec2(avail.x, avail.y * 0.55f), M, E, label_w + 8, 6, 44);
  spec.selected = [&](int m, int e) { return m == sel.domain && sel.HasExpert(e); };
  if (p != nullptr)
    spec.marked = [&](int m, int e) {
      const size_t i = p->Index(m, layer, e);
      const double q = i < p->q.size() ? p->q[i] : kNoValue;
      return !std::isnan(q) && q <= alpha_;
    };
  last_ = DrawHeatmap(spec);
  if (last_.hovered) {
    const int m = last_.row, e = last_.col;
    const size_t i = lift->Index(m, layer, e);
    ImGui::BeginTooltip();
    ImGui::Text("layer %d, expert %d, %s", layer, e, d.domains[m].c_str());
    ImGui::Separator();
    if (!std::isnan(lift->ci_low[i]))
      ImGui::Text("lift = %.3f  [%.3f, %.3f] %.0f%% CI", lift->value[i], lift->ci_low[i],
                  lift->ci_high[i], d.ci_level * 100);
    else
      ImGui::Text("lift = %.3f", lift->value[i]);
    if (const ExpertMetric* ds = d.FindExpertMetric(DsMetric()))
      ImGui::Text("%s = %.4f (uniform %.4f)", ds->name.c_str(), ds->value[i], ds->baseline[i]);
    if (p != nullptr && lift_ == Lift::kTokenControlled)
      ImGui::Text("t test over documents p = %.3g, Benjamini-Hochberg q = %.3g", p->value[i],
                  i < p->q.size() ? p->q[i] : kNoValue);
    else if (p != nullptr)
      ImGui::Text("permutation p = %.3g, Benjamini-Hochberg q = %.3g (%d permutations)",
                  p->value[i], i < p->q.size() ? p->q[i] : kNoValue, d.permutations);
    ImGui::TextDisabled("click: select this expert and domain");
    ImGui::EndTooltip();
    if (last_.clicked) {
      sel.domain = m;
      sel.SelectExpert(layer, e);
    }
  }
  ImGui::Spacing();
  legend_ = spec.scale;
  DrawLegend(legend_, LegendWidth(last_), 1.0, "no specialization");
  if (p != nullptr) {
    if (lift_ == Lift::kTokenControlled)
      ImGui::TextDisabled(
          "token-controlled: the domain's count over what its tokens get when each is routed as "
          "its id is routed in all domains. dot: a discovery at false discovery rate %.3g "
          "(t test over documents; Benjamini-Hochberg over all layer x expert x domain cells)",
          alpha_);
    else
      ImGui::TextDisabled(
          "dot: a discovery at false discovery rate %.3g (Benjamini-Hochberg over all layer x "
          "expert x domain cells; domain labels shuffled %d times)",
          alpha_, d.permutations);
  }
  ImGui::Separator();
  DrawTopTokens(d, sel);
}

void SpecializationView::DrawTopTokens(const StudioData& d, const Selection& sel) const {
  const TopTokens& t = d.top_tokens;
  if (t.empty()) {
    ImGui::TextDisabled("No top tokens: the statistics have no vocabulary tables.");
    return;
  }
  if (sel.experts.empty()) {
    ImGui::TextDisabled("Select an expert to see the tokens it receives most.");
    return;
  }
  const int layer = std::clamp(sel.layer, 0, t.layers - 1);
  const ExpertMetric* vs = d.FindExpertMetric(Metric::kVocabSpecInput);
  for (int e : sel.experts) {
    if (e < 0 || e >= t.experts) continue;
    ImGui::PushStyleColor(ImGuiCol_Text, ExpertColor(e, t.experts));
    ImGui::Text("\xe2\x96\xa0");
    ImGui::PopStyleColor();
    ImGui::SameLine();
    ImGui::Text("Layer %d, expert %d: top input tokens", layer, e);
    if (vs != nullptr) {
      const size_t i = vs->Index(d.num_domains(), layer, e);
      ImGui::SameLine();
      ImGui::TextDisabled("(vocabulary specialization %.3f, shuffled %.3f, over %.0f tokens)",
                          vs->value[i], vs->baseline[i], vs->n[i]);
    }
    const std::string id = "top" + std::to_string(e);
    if (ImGui::BeginTable(id.c_str(), 4,
                          ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                              ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_NoHostExtendX)) {
      ImGui::TableSetupColumn("token");
      ImGui::TableSetupColumn("routed here");
      ImGui::TableSetupColumn("occurrences");
      ImGui::TableSetupColumn("share");
      ImGui::TableHeadersRow();
      for (int i = 0; i < t.top_n; ++i) {
        const TopTokenEntry& x = t.At(layer, e, i);
        if (x.token < 0) break;
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        std::string shown;
        for (char c : x.text)
          shown += c == '\n'   ? std::string("\xe2\x86\xb5")  // U+21B5
                   : c == '\t' ? std::string("\xe2\x87\xa5")  // U+21E5
                               : std::string(1, c);
        ImGui::Text("'%s'  #%d", shown.c_str(), x.token);
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(x.count));
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(x.occurrences));
        ImGui::TableNextColumn();
        ImGui::Text("%.3f", x.share);
      }
      ImGui::EndTable();
    }
  }
}

void SpecializationView::WriteCsv(const StudioData& d, const Selection&, std::ostream& out) const {
  out << "layer,domain,expert,metric,value,ci_low,ci_high,p_value,q_value\n";
  const ExpertMetric* lift = d.FindExpertMetric(LiftMetric());
  const ExpertMetric* p = d.FindExpertMetric(PMetric());
  if (lift == nullptr) return;
  for (int l = 0; l < lift->layers; ++l)
    for (int m = 0; m < d.num_domains(); ++m)
      for (int e = 0; e < lift->experts; ++e) {
        const size_t i = lift->Index(m, l, e);
        out << l << ',' << CsvField(d.domains[m]) << ',' << e << ',' << lift->name << ','
            << CsvNumber(lift->value[i]) << ',' << CsvNumber(lift->ci_low[i]) << ','
            << CsvNumber(lift->ci_high[i]) << ',' << CsvNumber(p ? p->value[i] : NAN) << ','
            << CsvNumber(p && i < p->q.size() ? p->q[i] : NAN) << '\n';
      }
}

}  // namespace moe::studio
