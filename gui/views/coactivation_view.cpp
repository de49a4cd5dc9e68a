#include "gui/views/coactivation_view.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "gui/views/csv.h"
#include "gui/views/domains.h"

namespace moe::studio {
namespace {

using Mode = CoactivationView::Mode;

int64_t Count(const PairTables& t, Mode mode, int d, int l, int i, int j) {
  const size_t E = static_cast<size_t>(t.experts);
  return mode == Mode::kCoactivation ? t.coactivation[t.CoBlock(d, l) + i * E + j]
                                     : t.transitions[t.TransitionBlock(d, l) + i * E + j];
}

// Tokens routed to expert i at layer l (the co-activation diagonal).
int64_t Routed(const PairTables& t, int d, int l, int i) {
  return t.coactivation[t.CoBlock(d, l) + static_cast<size_t>(i) * t.experts + i];
}

// The highest layer a table starts at: L - 1 for co-activation, L - 2 for transitions.
int LastLayer(const PairTables& t, Mode mode) {
  return mode == Mode::kCoactivation ? t.layers - 1 : t.layers - 2;
}

}  // namespace

double CoactivationView::Rate(const PairTables& t, Mode mode, int d, int l, int i, int j) {
  const size_t E = static_cast<size_t>(t.experts);
  return mode == Mode::kCoactivation ? t.coactivation_rate[t.CoBlock(d, l) + i * E + j]
                                     : t.transition_rate[t.TransitionBlock(d, l) + i * E + j];
}

ColorScale CoactivationView::ScaleFor(const PairTables& t, Mode mode, int d, int l) {
  double hi = 0;
  for (int i = 0; i < t.experts; ++i)
    for (int j = 0; j < t.experts; ++j)
      if (const double v = Rate(t, mode, d, l, i, j); !std::isnan(v)) hi = std::max(hi, v);
  ColorScale s;
  s.kind = ColorScale::Kind::kSequential;
  s.min = 0;
  s.max = hi > 0 ? hi : 1;
  return s;
}

void CoactivationView::DrawControls(const StudioData& d, Selection& sel) {
  int mode = mode_ == Mode::kCoactivation ? 0 : 1;
  ImGui::RadioButton("co-activation in a layer", &mode, 0);
  ImGui::SameLine();
  ImGui::RadioButton("transitions to the next layer", &mode, 1);
  mode_ = mode == 0 ? Mode::kCoactivation : Mode::kTransitions;
  if (d.pairs.layers < 2) mode_ = Mode::kCoactivation;  // one layer: no transitions
  const int last = LastLayer(d.pairs, mode_);
  int layer = std::clamp(sel.layer, 0, last);
  ImGui::SetNextItemWidth(140);
  if (ImGui::SliderInt("layer", &layer, 0, last) && layer != sel.layer) {
    sel.layer = layer;
    sel.experts.clear();  // experts are of one layer
  }
  ImGui::SameLine();
  DomainCombo(d, sel);
  ImGui::SameLine();
  ImGui::Checkbox("seriate", &seriate_);
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip("order experts so that those that route alike are adjacent");
}

void CoactivationView::DrawTooltip(const StudioData& d, int row, int i, int j) const {
  const PairTables& t = d.pairs;
  const int l = layer_;
  ImGui::BeginTooltip();
  if (mode_ == Mode::kCoactivation) {
    ImGui::Text("layer %d, experts %d and %d, %s", l, i, j, DomainName(d, row).c_str());
    ImGui::Separator();
    if (i == j) {
      ImGui::Text("%lld tokens routed to expert %d", static_cast<long long>(Routed(t, row, l, i)),
                  i);
    } else {
      ImGui::Text("P(%d | %d) = %.4g", j, i, Rate(t, mode_, row, l, i, j));
      ImGui::Text("P(%d | %d) = %.4g", i, j, Rate(t, mode_, row, l, j, i));
      ImGui::TextDisabled("%lld tokens chose both; %lld chose %d, %lld chose %d",
                          static_cast<long long>(Count(t, mode_, row, l, i, j)),
                          static_cast<long long>(Routed(t, row, l, i)), i,
                          static_cast<long long>(Routed(t, row, l, j)), j);
    }
  } else {
    ImGui::Text("expert %d at layer %d -> expert %d at layer %d, %s", i, l, j, l + 1,
                DomainName(d, row).c_str());
    ImGui::Separator();
    ImGui::Text("P(%d at L%d | %d at L%d) = %.4g", j, l + 1, i, l, Rate(t, mode_, row, l, i, j));
    ImGui::TextDisabled("%lld of the %lld tokens at expert %d",
                        static_cast<long long>(Count(t, mode_, row, l, i, j)),
                        static_cast<long long>(Routed(t, row, l, i)), i);
  }
  ImGui::TextDisabled("click: select expert %d of layer %d   ctrl+click: add", i, l);
  ImGui::EndTooltip();
}

void CoactivationView::Draw(const StudioData& d, Selection& sel) {
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  const PairTables& t = d.pairs;
  if (t.empty()) {
    ImGui::TextDisabled("The statistics have no co-activation tables.");
    return;
  }
  DrawControls(d, sel);
  const int E = t.experts, row = DomainRow(d, sel.domain);
  layer_ = std::clamp(sel.layer, 0, LastLayer(t, mode_));
  rows_.resize(E);
  cols_.resize(E);
  std::iota(rows_.begin(), rows_.end(), 0);
  std::iota(cols_.begin(), cols_.end(), 0);
  if (seriate_) {
    const int* r = mode_ == Mode::kCoactivation
                       ? t.coactivation_order.data() + t.CoOrder(row, layer_)
                       : t.transition_row_order.data() + t.TransitionOrder(row, layer_);
    const int* c = mode_ == Mode::kCoactivation
                       ? r
                       : t.transition_col_order.data() + t.TransitionOrder(row, layer_);
    rows_.assign(r, r + E);
    cols_.assign(c, c + E);
  }

  const bool transitions = mode_ == Mode::kTransitions;
  if (transitions)
    ImGui::TextDisabled(
        "rows: expert i at layer %d, columns: expert j at layer %d; cell: P(j | i), "
        "the share of i's tokens that go on to j",
        layer_, layer_ + 1);
  else
    ImGui::TextDisabled(
        "rows: expert i, columns: expert j, both at layer %d; cell: P(j | i), the "
        "share of i's tokens that also chose j",
        layer_);
  std::vector<std::string> row_labels, col_labels;
  for (int k = 0; k < E; ++k) {
    row_labels.push_back(std::string("E").append(std::to_string(rows_[k])));
    col_labels.push_back(std::to_string(cols_[k]));
  }
  const ColorScale scale = ScaleFor(t, mode_, row, layer_);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float side = std::min(avail.x - 40, avail.y - 110);
  HeatmapSpec spec;
  spec.id = "pairs";
  spec.rows = E;
  spec.cols = E;
  spec.value = [&](int r, int c) { return Rate(t, mode_, row, layer_, rows_[r], cols_[c]); };
  spec.scale = scale;
  const float size = std::clamp(std::floor(side / std::max(1, E)), 4.0f, 48.0f);
  spec.cell = ImVec2(size, size);
  spec.row_labels = row_labels;
  spec.col_labels = col_labels;
  spec.value_format = "%.2f";
  // The rows of the selected experts (their partners or successors).
  spec.selected = [&](int r, int) { return sel.layer == layer_ && sel.HasExpert(rows_[r]); };
  last_ = DrawHeatmap(spec);
  if (last_.hovered) {
    const int i = rows_[last_.row], j = cols_[last_.col];
    DrawTooltip(d, row, i, j);
    if (last_.clicked) ClickExpert(sel, layer_, i);
  }
  ImGui::Spacing();
  DrawLegend(scale, LegendWidth(last_), kNoValue, "");
}

void CoactivationView::WriteCsv(const StudioData& d, const Selection&, std::ostream& out) const {
  out << "table,domain,layer_from,layer_to,expert_i,expert_j,order_i,order_j,count,count_i,"
         "p_j_given_i\n";
  const PairTables& t = d.pairs;
  if (t.empty()) return;
  const int E = t.experts;
  for (const Mode mode : {Mode::kCoactivation, Mode::kTransitions})
    for (int r = 0; r < t.domains; ++r)
      for (int l = 0; l <= LastLayer(t, mode); ++l) {
        // Position of each expert in the seriation order of rows and of columns.
        std::vector<int> row_pos(E), col_pos(E);
        const bool co = mode == Mode::kCoactivation;
        const int* ro = co ? t.coactivation_order.data() + t.CoOrder(r, l)
                           : t.transition_row_order.data() + t.TransitionOrder(r, l);
        const int* cl = co ? ro : t.transition_col_order.data() + t.TransitionOrder(r, l);
        for (int k = 0; k < E; ++k) {
          row_pos[ro[k]] = k;
          col_pos[cl[k]] = k;
        }
        for (int i = 0; i < E; ++i)
          for (int j = 0; j < E; ++j) {
            if (co && i == j) continue;
            out << (co ? "coactivation" : "transitions") << ','
                << CsvField(r < d.num_domains() ? d.domains[r] : "all") << ',' << l << ','
                << (co ? l : l + 1) << ',' << i << ',' << j << ',' << row_pos[i] << ','
                << col_pos[j] << ',' << Count(t, mode, r, l, i, j) << ',' << Routed(t, r, l, i)
                << ',' << CsvNumber(Rate(t, mode, r, l, i, j)) << '\n';
          }
      }
}

}  // namespace moe::studio
