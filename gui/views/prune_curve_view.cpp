#include "gui/views/prune_curve_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/views/csv.h"

namespace moe::studio {

namespace {

constexpr const char* kDelta = "\xce\x94NLL";  // ΔNLL

// The sets of one score, by ratio.
std::vector<const PruneSet*> SetsOf(const PruneCurveData& d, const std::string& score) {
  std::vector<const PruneSet*> sets;
  for (const PruneSet& s : d.sets)
    if (s.score == score) sets.push_back(&s);
  std::sort(sets.begin(), sets.end(),
            [](const PruneSet* a, const PruneSet* b) { return a->ratio < b->ratio; });
  return sets;
}

// Mean ΔNLL of the controls at each ratio of the curve (NaN where there is none).
std::vector<double> ControlMeans(const PruneCurveData& d, size_t row) {
  std::vector<double> means;
  for (double r : d.ratios) {
    double sum = 0;
    int n = 0;
    for (const PruneControl& c : d.controls)
      if (c.ratio == r && std::isfinite(c.delta_nll[row].value)) sum += c.delta_nll[row].value, ++n;
    means.push_back(n > 0 ? sum / n : kNoValue);
  }
  return means;
}

std::string Percent(double ratio) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%g%%", ratio * 100);
  return buf;
}

void SetTooltip(const PruneCurveData& d, const PruneSet& s, size_t row) {
  ImGui::BeginTooltip();
  ImGui::Text("%s: score %s, %s of each MoE layer's experts removed", s.name.c_str(),
              s.score.c_str(), Percent(s.ratio).c_str());
  const ValueCi& v = s.delta_nll[row];
  ImGui::Text("%s %s nats/token over %lld predictions", kDelta,
              FormatWithInterval(v.value, v.low, v.high, "%+.4f").c_str(),
              static_cast<long long>(s.tokens[row]));
  if (d.comparison_source.empty()) {
    ImGui::TextDisabled("no .vs-random.csv beside the results: no comparison with random");
  } else {
    const ValueCi& x = s.difference[row];
    ImGui::Text("random pruning (%d draws): %s %+.4f", s.controls, kDelta, s.random_delta_nll[row]);
    ImGui::Text("difference (score - random): %s",
                FormatWithInterval(x.value, x.low, x.high, "%+.4f").c_str());
    ImGui::Text("p %.3g, BH q %.3g", s.p_value[row], s.q_value[row]);
  }
  ImGui::EndTooltip();
}

}  // namespace

void PruneCurveView::Draw(const StudioData& data, Selection&) {
  const PruneCurveData& d = data.results.prune;
  drawn_series_ = drawn_markers_ = 0;
  if (d.empty()) {
    ImGui::TextDisabled("No pruning curve.");
    ImGui::TextDisabled(
        "Run moescope prune-curve ... -o prune.h5 and open prune.h5 (File > Open results...),");
    ImGui::TextDisabled("or keep it (with prune.h5.vs-random.csv) next to the trace.");
    return;
  }
  const int M = static_cast<int>(d.domains.size());
  if (domain_row_ < 0 || domain_row_ > M) domain_row_ = M;
  FileDomainCombo("domain", d.domains, domain_row_);
  ImGui::SameLine();
  ImGui::TextDisabled("%s", d.source.c_str());
  ImGui::TextWrapped(
      "%s = NLL(pruned) - NLL(unpruned) per scored token (nats), experts disabled with reroute "
      "semantics. Bands and bars: bootstrap intervals over documents. Control: random pruning "
      "of as many experts per layer (grey, dashed: mean of the draws; rings: each draw). "
      "Table: BH q <= 0.05 in orange.",
      kDelta);
  DrawPlot(d);
  DrawTable(d);
}

void PruneCurveView::DrawPlot(const PruneCurveData& d) {
  const size_t row = static_cast<size_t>(domain_row_);
  std::vector<double> ys = {0.0};
  for (const PruneSet& s : d.sets)
    ys.insert(ys.end(), {s.delta_nll[row].value, s.delta_nll[row].low, s.delta_nll[row].high});
  for (const PruneControl& c : d.controls)
    ys.insert(ys.end(), {c.delta_nll[row].value, c.delta_nll[row].low, c.delta_nll[row].high});
  double y0 = 0, y1 = 0;
  WidenRange(ys, y0, y1);
  PadRange(y0, y1);
  PlotAxes axes;
  axes.x0 = 0;
  axes.x1 = d.ratios.empty() ? 1 : d.ratios.back() * 1.08;
  axes.y0 = y0, axes.y1 = y1;
  axes.x_label = "share of each MoE layer's experts removed";
  axes.y_label = std::string(kDelta) + " (nats per token)";
  axes.x_format = "%g";
  axes.y_format = "%.3g";
  axes.x_ticks = {0.0};
  axes.x_ticks.insert(axes.x_ticks.end(), d.ratios.begin(), d.ratios.end());
  const float height = std::clamp(ImGui::GetContentRegionAvail().y * 0.62f, 220.0f, 560.0f);
  frame_ = DrawPlotAxes(axes, ImVec2(ImGui::GetContentRegionAvail().x, height));
  PlotHLine(frame_, 0, ImGui::GetColorU32(ImGuiCol_Text, 0.6f));
  NearestPoint near(10);
  // Scores: the line starts at the unpruned model (0 removed, ΔNLL 0 by definition).
  for (size_t i = 0; i < d.scores.size(); ++i) {
    const std::vector<const PruneSet*> sets = SetsOf(d, d.scores[i]);
    std::vector<double> x = {0}, y = {0}, lo = {0}, hi = {0};
    for (const PruneSet* s : sets) {
      x.push_back(s->ratio);
      y.push_back(s->delta_nll[row].value);
      lo.push_back(s->delta_nll[row].low);
      hi.push_back(s->delta_nll[row].high);
    }
    const ImU32 color = SeriesColor(static_cast<int>(i));
    PlotBand(frame_, x, lo, hi, WithAlpha(color, 50));
    PlotLine(frame_, x, y, color, 2.5f);
    for (size_t j = 0; j < sets.size(); ++j) {
      PlotMarker(frame_, x[j + 1], y[j + 1], color, MarkerShape::kCircle, 4.5f);
      near.Offer(frame_.At(x[j + 1], y[j + 1]), static_cast<int>(i), static_cast<int>(j));
      ++drawn_markers_;
    }
    ++drawn_series_;
  }
  // The control: its draws side by side around each ratio, each with its interval.
  if (!d.controls.empty()) {
    const ImU32 grey = ControlColor();
    std::vector<double> x = {0}, y = {0};
    const std::vector<double> means = ControlMeans(d, row);
    x.insert(x.end(), d.ratios.begin(), d.ratios.end());
    y.insert(y.end(), means.begin(), means.end());
    PlotLine(frame_, x, y, grey, 2, true);
    const double step = (axes.x1 - axes.x0) * 0.008;
    for (double r : d.ratios) {
      std::vector<size_t> at;
      for (size_t c = 0; c < d.controls.size(); ++c)
        if (d.controls[c].ratio == r) at.push_back(c);
      for (size_t k = 0; k < at.size(); ++k) {
        const PruneControl& c = d.controls[at[k]];
        const double cx = r + step * (static_cast<double>(k) - (at.size() - 1) / 2.0);
        PlotErrorBar(frame_, cx, c.delta_nll[row].low, c.delta_nll[row].high, WithAlpha(grey, 200),
                     3);
        PlotMarker(frame_, cx, c.delta_nll[row].value, grey, MarkerShape::kRing, 4);
        near.Offer(frame_.At(cx, c.delta_nll[row].value), static_cast<int>(d.scores.size()),
                   static_cast<int>(at[k]));
        ++drawn_markers_;
      }
    }
    ++drawn_series_;
  }
  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < d.scores.size(); ++i)
    legend.push_back(
        {"score " + d.scores[i], SeriesColor(static_cast<int>(i)), false, MarkerShape::kCircle});
  if (!d.controls.empty())
    legend.push_back({"random control", ControlColor(), true, MarkerShape::kRing});
  DrawLegend(legend);
  if (!near.found() || !ImGui::IsWindowHovered()) return;
  if (near.series < static_cast<int>(d.scores.size())) {
    const std::vector<const PruneSet*> sets = SetsOf(d, d.scores[static_cast<size_t>(near.series)]);
    SetTooltip(d, *sets[static_cast<size_t>(near.index)], row);
  } else {
    const PruneControl& c = d.controls[static_cast<size_t>(near.index)];
    const ValueCi& v = c.delta_nll[row];
    ImGui::SetTooltip(
        "%s: random control, %s of each MoE layer's experts removed\n%s %s nats/token",
        c.name.c_str(), Percent(c.ratio).c_str(), kDelta,
        FormatWithInterval(v.value, v.low, v.high, "%+.4f").c_str());
  }
}

void PruneCurveView::DrawTable(const PruneCurveData& d) {
  const size_t row = static_cast<size_t>(domain_row_);
  const ImGuiTableFlags flags = ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_ScrollY;
  const float rows_h = (ImGui::GetTextLineHeight() + 2 * ImGui::GetStyle().CellPadding.y + 1) *
                       static_cast<float>(d.sets.size() + 1);
  const float h = std::max(std::min(ImGui::GetContentRegionAvail().y, rows_h + 6),
                           ImGui::GetTextLineHeight() * 5);
  if (!ImGui::BeginTable("prune_sets", 7, flags, ImVec2(0, h))) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  for (const char* c : {"set", "removed", "\xce\x94NLL [interval]", "random \xce\x94NLL",
                        "score - random [interval]", "p", "BH q"})
    ImGui::TableSetupColumn(c);
  ImGui::TableHeadersRow();
  for (const PruneSet& s : d.sets) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(s.name.c_str());
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(Percent(s.ratio).c_str());
    ImGui::TableNextColumn();
    const ValueCi& v = s.delta_nll[row];
    ImGui::TextUnformatted(FormatWithInterval(v.value, v.low, v.high, "%+.4f").c_str());
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(
        FormatWithInterval(s.random_delta_nll[row], kNoValue, kNoValue, "%+.4f").c_str());
    ImGui::TableNextColumn();
    const ValueCi& x = s.difference[row];
    ImGui::TextUnformatted(FormatWithInterval(x.value, x.low, x.high, "%+.4f").c_str());
    ImGui::TableNextColumn();
    ImGui::Text("%.3g", s.p_value[row]);
    ImGui::TableNextColumn();
    // q at or below 5 %: the set differs from random pruning after Benjamini-Hochberg.
    if (s.q_value[row] <= 0.05)
      ImGui::TextColored(ImVec4(0.85f, 0.33f, 0.1f, 1), "%.3g", s.q_value[row]);
    else
      ImGui::Text("%.3g", s.q_value[row]);
  }
  ImGui::EndTable();
}

void PruneCurveView::WriteCsv(const StudioData& data, const Selection&, std::ostream& out) const {
  const PruneCurveData& d = data.results.prune;
  out << "set,kind,score,ratio,domain,tokens,delta_nll,ci_low,ci_high,random_delta_nll,"
         "difference,difference_ci_low,difference_ci_high,p_value,q_value\n";
  const size_t M = d.domains.size();
  auto domain = [&](size_t m) { return m < M ? d.domains[m] : std::string("all"); };
  for (const PruneSet& s : d.sets)
    for (size_t m = 0; m <= M; ++m) {
      const ValueCi& v = s.delta_nll[m];
      const ValueCi& x = s.difference[m];
      out << CsvField(s.name) << ",score," << CsvField(s.score) << ',' << CsvNumber(s.ratio) << ','
          << CsvField(domain(m)) << ',' << s.tokens[m] << ',' << CsvNumber(v.value) << ','
          << CsvNumber(v.low) << ',' << CsvNumber(v.high) << ',' << CsvNumber(s.random_delta_nll[m])
          << ',' << CsvNumber(x.value) << ',' << CsvNumber(x.low) << ',' << CsvNumber(x.high) << ','
          << CsvNumber(s.p_value[m]) << ',' << CsvNumber(s.q_value[m]) << '\n';
    }
  for (const PruneControl& c : d.controls)
    for (size_t m = 0; m <= M; ++m) {
      const ValueCi& v = c.delta_nll[m];
      out << CsvField(c.name) << ",random,random," << CsvNumber(c.ratio) << ','
          << CsvField(domain(m)) << ",," << CsvNumber(v.value) << ',' << CsvNumber(v.low) << ','
          << CsvNumber(v.high) << ",,,,,,\n";
    }
}

}  // namespace moe::studio
