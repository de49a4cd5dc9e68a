#include "gui/views/cache_curve_view.h"

#include <algorithm>
#include <cmath>

#include "gui/views/csv.h"

namespace moe::studio {

namespace {

// Belady's MIN is the offline bound the online policies are judged against: drawn dashed.
bool IsBound(const std::string& policy) {
  return policy == "belady";
}

void RowTooltip(const CacheCurveData& d, const CacheCurveRow& r) {
  ImGui::BeginTooltip();
  ImGui::Text("%s, layer %d, %d of %d experts cached",
              d.policies[static_cast<size_t>(r.policy)].c_str(), r.layer, r.capacity, d.experts);
  ImGui::Text("hit rate %s (%lld requests, %lld documents)",
              FormatWithInterval(r.hit_rate.value, r.hit_rate.low, r.hit_rate.high, "%.4f").c_str(),
              static_cast<long long>(r.requests), static_cast<long long>(r.docs));
  ImGui::Text("%.3f misses per token, %s moved per token", r.misses_per_token,
              FormatBytes(r.bytes_per_token).c_str());
  for (size_t e = 0; e < d.extra_fields.size(); ++e)
    if (std::isfinite(r.extra[e])) ImGui::Text("%s %.4g", d.extra_fields[e].c_str(), r.extra[e]);
  ImGui::EndTooltip();
}

}  // namespace

void CacheCurveView::Draw(const StudioData& data, Selection& sel) {
  const CacheCurveData& d = data.results.cache;
  drawn_series_ = drawn_markers_ = 0;
  if (d.empty()) {
    ImGui::TextDisabled("No cache simulation.");
    ImGui::TextDisabled(
        "Run moescope cache-sim TRACE.h5 -o DIR and open DIR/cache.json (File > Open results...),");
    ImGui::TextDisabled("or keep DIR next to the trace.");
    return;
  }
  const int M = static_cast<int>(d.domains.size());
  if (domain_row_ < 0 || domain_row_ > M) domain_row_ = M;
  // The layer follows the shared selection (the file is usually of the open trace).
  layer_ = std::clamp(sel.layer, 0, d.layers - 1);
  ImGui::SetNextItemWidth(200);
  if (ImGui::SliderInt("layer", &layer_, 0, d.layers - 1)) {
    sel.layer = layer_;
    sel.experts.clear();
  }
  ImGui::SameLine();
  FileDomainCombo("domain", d.domains, domain_row_);
  ImGui::SameLine();
  ImGui::TextDisabled("%s", d.source.c_str());
  const double bytes = layer_ < static_cast<int>(d.expert_bytes.size())
                           ? d.expert_bytes[static_cast<size_t>(layer_)]
                           : kNoValue;
  ImGui::TextWrapped(
      "Share of expert requests served from a cache of C experts per layer (%s; top-%d of %d "
      "experts; %s per miss at this layer). Bands: %.0f%% intervals over documents. Belady "
      "(dashed) is the offline optimum.",
      d.cold_start ? "cold start per document" : "warm across the corpus", d.top_k, d.experts,
      FormatBytes(bytes).c_str(), d.ci_level * 100);

  PlotAxes axes;
  axes.x0 = d.capacities.empty() ? 0 : d.capacities.front() - 0.3;
  axes.x1 = d.capacities.empty() ? 1 : d.capacities.back() + 0.3;
  axes.y0 = 0, axes.y1 = 1.02;
  axes.x_label = "cache size (experts kept per layer)";
  axes.y_label = "hit rate";
  axes.x_format = "%.0f";
  axes.y_format = "%.1f";
  for (int c : d.capacities) axes.x_ticks.push_back(c);
  const float height = std::max(
      220.0f, ImGui::GetContentRegionAvail().y - 3 * ImGui::GetTextLineHeightWithSpacing());
  frame_ = DrawPlotAxes(axes, ImVec2(ImGui::GetContentRegionAvail().x, height));
  NearestPoint near(10);
  std::vector<LegendEntry> legend;
  for (size_t p = 0; p < d.policies.size(); ++p) {
    std::vector<double> x, y, lo, hi;
    std::vector<const CacheCurveRow*> rows;
    for (int c : d.capacities) {
      const CacheCurveRow* r = d.Find(layer_, domain_row_, static_cast<int>(p), c);
      if (r == nullptr) continue;
      rows.push_back(r);
      x.push_back(c);
      y.push_back(r->hit_rate.value);
      lo.push_back(r->hit_rate.low);
      hi.push_back(r->hit_rate.high);
    }
    if (rows.empty()) continue;
    const ImU32 color = SeriesColor(static_cast<int>(p));
    const bool bound = IsBound(d.policies[p]);
    PlotBand(frame_, x, lo, hi, WithAlpha(color, 45));
    PlotLine(frame_, x, y, color, 2.5f, bound);
    const MarkerShape shape = bound ? MarkerShape::kDiamond : MarkerShape::kCircle;
    for (size_t i = 0; i < rows.size(); ++i) {
      PlotMarker(frame_, x[i], y[i], color, shape, 4.5f);
      near.Offer(frame_.At(x[i], y[i]), static_cast<int>(p),
                 static_cast<int>(rows[i] - d.rows.data()));
      ++drawn_markers_;
    }
    legend.push_back({d.policies[p], color, bound, shape});
    ++drawn_series_;
  }
  DrawLegend(legend);
  if (near.found() && ImGui::IsWindowHovered())
    RowTooltip(d, d.rows[static_cast<size_t>(near.index)]);
}

void CacheCurveView::WriteCsv(const StudioData& data, const Selection&, std::ostream& out) const {
  const CacheCurveData& d = data.results.cache;
  out << "layer,domain,policy,capacity,hit_rate,ci_low,ci_high,misses_per_token,bytes_per_token,"
         "requests,tokens,docs";
  for (const std::string& e : d.extra_fields) out << ',' << CsvField(e);
  out << '\n';
  for (const CacheCurveRow& r : d.rows) {
    const size_t m = static_cast<size_t>(r.domain);
    out << r.layer << ',' << CsvField(m < d.domains.size() ? d.domains[m] : "all") << ','
        << CsvField(d.policies[static_cast<size_t>(r.policy)]) << ',' << r.capacity << ','
        << CsvNumber(r.hit_rate.value) << ',' << CsvNumber(r.hit_rate.low) << ','
        << CsvNumber(r.hit_rate.high) << ',' << CsvNumber(r.misses_per_token) << ','
        << CsvNumber(r.bytes_per_token) << ',' << r.requests << ',' << r.tokens << ',' << r.docs;
    for (double e : r.extra) out << ',' << CsvNumber(e);
    out << '\n';
  }
}

}  // namespace moe::studio
