#include "gui/views/replay_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "gui/views/csv.h"

namespace moe::studio {

namespace {

constexpr const char* kDelta = "\xce\x94NLL";  // ΔNLL

std::string AuditName(const ReplayAuditData& a) {
  return a.subject + " vs " + a.reference;
}

// Set agreement, then top-1 agreement: the two bars of each layer.
const ValueCi& Metric(const ReplayAuditData::Layer& l, int which) {
  return which == 0 ? l.set_agreement : l.top1_agreement;
}

// The audit's headline for domain row m: ΔNLL of B against A with its interval, both NLLs and
// the next-token agreement; then what the bars show.
void DrawAuditHeader(const ReplayAuditData& a, size_t m) {
  if (m < a.delta_nll.size()) {
    const ValueCi& x = a.delta_nll[m];
    const ValueCi& g = a.next_token_agreement[m];
    ImGui::Text("B = %s, A = %s (the control): %s = NLL(B) - NLL(A) = %s nats/token",
                a.subject.c_str(), a.reference.c_str(), kDelta,
                FormatWithInterval(x.value, x.low, x.high, "%+.5f").c_str());
    ImGui::Text("NLL(A) %.4f, NLL(B) %.4f, next-token agreement %s, over %lld predictions",
                a.reference_nll[m], a.subject_nll[m],
                FormatWithInterval(g.value, g.low, g.high, "%.4f").c_str(),
                static_cast<long long>(a.tokens[m]));
  }
  ImGui::TextDisabled(
      "Bars: per MoE layer, the share of tokens whose set of experts (set) or first expert (top-1) "
      "is the same in A and B, over all documents; error bars: intervals over documents.");
}

}  // namespace

void ReplayView::Draw(const StudioData& data, Selection& sel) {
  const ReplayData& d = data.results.replay;
  drawn_bars_ = 0;
  if (d.empty()) {
    ImGui::TextDisabled("No route replay report.");
    ImGui::TextDisabled(
        "Run moescope replay ... -o report.csv and open report.csv (File > Open results...),");
    ImGui::TextDisabled("or keep it next to the trace.");
    return;
  }
  audit_ = std::clamp(audit_, 0, static_cast<int>(d.audits.size()) - 1);
  const ReplayAuditData& a = d.audits[static_cast<size_t>(audit_)];
  ImGui::SetNextItemWidth(340);
  if (ImGui::BeginCombo("audit", AuditName(a).c_str())) {
    for (size_t i = 0; i < d.audits.size(); ++i)
      if (ImGui::Selectable(AuditName(d.audits[i]).c_str(), static_cast<int>(i) == audit_))
        audit_ = static_cast<int>(i);
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  const int M = static_cast<int>(a.domains.size());
  if (domain_row_ < 0 || domain_row_ > M) domain_row_ = M;
  FileDomainCombo("domain", a.domains, domain_row_);
  ImGui::SameLine();
  ImGui::TextDisabled("%s", d.source.c_str());
  DrawAuditHeader(a, static_cast<size_t>(domain_row_));

  // Bars stand at the layers' own numbers, so dense layers leave gaps.
  const int n = static_cast<int>(a.layers.size());
  const int first = n > 0 ? a.layers.front().layer : 0, last = n > 0 ? a.layers.back().layer : 0;
  PlotAxes axes;
  axes.x0 = first - 0.7, axes.x1 = last + 0.7;
  axes.y0 = 0, axes.y1 = 1.08;
  axes.x_label = "layer (MoE layers only)";
  axes.y_label = "agreement (share of tokens)";
  axes.y_format = "%.1f";
  axes.x_format = "%.0f";
  for (const ReplayAuditData::Layer& l : a.layers) axes.x_ticks.push_back(l.layer);
  const float height = std::max(
      220.0f, ImGui::GetContentRegionAvail().y - 2 * ImGui::GetTextLineHeightWithSpacing());
  frame_ = DrawPlotAxes(axes, ImVec2(ImGui::GetContentRegionAvail().x, height));
  const float slot = (frame_.max.x - frame_.min.x) / static_cast<float>(last - first + 1.4f);
  const float bar = std::clamp(slot * 0.36f, 2.0f, 40.0f);
  const ImU32 colors[2] = {SeriesColor(0), SeriesColor(1)};
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  NearestPoint near(std::max(10.0f, bar));
  for (int i = 0; i < n; ++i) {
    const ReplayAuditData::Layer& l = a.layers[static_cast<size_t>(i)];
    for (int w = 0; w < 2; ++w) {
      const double offset = (w == 0 ? -0.5 : 0.5) * bar / std::max(1.0f, slot) * 1.05;
      const double x = l.layer + offset;
      const ValueCi& v = Metric(l, w);
      PlotBar(frame_, x, 0, v.value, bar, colors[w]);
      PlotErrorBar(frame_, x, v.low, v.high, text, std::min(4.0f, bar / 2));
      if (std::isfinite(v.value)) {
        ++drawn_bars_;
        // The value above the bar where it fits: agreements near 1 differ by less than a pixel.
        char label[16];
        std::snprintf(label, sizeof(label), "%.3f", v.value);
        const ImVec2 ts = ImGui::CalcTextSize(label);
        if (ts.x <= slot * 0.5f) {
          const ImVec2 top =
              frame_.At(x, std::isfinite(v.high) ? std::max(v.value, v.high) : v.value);
          ImGui::GetWindowDrawList()->AddText(ImVec2(top.x - ts.x / 2, top.y - ts.y - 2), text,
                                              label);
        }
      }
      near.Offer(frame_.At(x, std::isfinite(v.value) ? v.value : 0), i, w);
    }
  }
  PlotHLine(frame_, 1, ImGui::GetColorU32(ImGuiCol_Text, 0.6f));
  DrawLegend({{"set agreement", colors[0], false, MarkerShape::kSquare},
              {"top-1 agreement", colors[1], false, MarkerShape::kSquare}});
  if (near.found() && ImGui::IsWindowHovered()) {
    const ReplayAuditData::Layer& l = a.layers[static_cast<size_t>(near.series)];
    ImGui::BeginTooltip();
    ImGui::Text("layer %d (%lld tokens)", l.layer, static_cast<long long>(l.tokens));
    ImGui::Text("set agreement %s", FormatWithInterval(l.set_agreement.value, l.set_agreement.low,
                                                       l.set_agreement.high, "%.4f")
                                        .c_str());
    ImGui::Text("top-1 agreement %s",
                FormatWithInterval(l.top1_agreement.value, l.top1_agreement.low,
                                   l.top1_agreement.high, "%.4f")
                    .c_str());
    ImGui::EndTooltip();
    if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
      sel.layer = l.layer;
      sel.experts.clear();
    }
  }
}

void ReplayView::WriteCsv(const StudioData& data, const Selection&, std::ostream& out) const {
  out << "audit,layer,domain,metric,value,ci_low,ci_high,tokens\n";
  for (const ReplayAuditData& a : data.results.replay.audits) {
    const std::string name = CsvField(AuditName(a));
    auto row = [&](int layer, const std::string& domain, const char* metric, const ValueCi& v,
                   int64_t tokens) {
      out << name << ',' << layer << ',' << CsvField(domain) << ',' << metric << ','
          << CsvNumber(v.value) << ',' << CsvNumber(v.low) << ',' << CsvNumber(v.high) << ','
          << tokens << '\n';
    };
    for (const ReplayAuditData::Layer& l : a.layers) {
      row(l.layer, "all", "set_agreement", l.set_agreement, l.tokens);
      row(l.layer, "all", "top1_agreement", l.top1_agreement, l.tokens);
    }
    for (size_t m = 0; m < a.delta_nll.size(); ++m) {
      const std::string domain = m < a.domains.size() ? a.domains[m] : "all";
      row(-1, domain, "delta_nll", a.delta_nll[m], a.tokens[m]);
      row(-1, domain, "next_token_agreement", a.next_token_agreement[m], a.tokens[m]);
      row(-1, domain, "reference_nll", {a.reference_nll[m], kNoValue, kNoValue}, a.tokens[m]);
      row(-1, domain, "subject_nll", {a.subject_nll[m], kNoValue, kNoValue}, a.tokens[m]);
    }
  }
}

}  // namespace moe::studio
