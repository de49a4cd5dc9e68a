#include "gui/views/ablation_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "gui/views/csv.h"
#include "gui/views/disable_mode_combo.h"
#include "gui/views/domains.h"
#include "gui/views/token_text.h"

namespace moe::studio {
namespace {

std::string RowName(const AblationOutcome& o, size_t row) {
  return row < o.domains.size() ? o.domains[row] : std::string("all domains");
}

// The model the panel runs: the open one, else the one the trace was made with.
std::string ModelDir(const StudioData& d) {
  return d.model.dir.empty() ? d.trace.info.model_path : d.model.dir;
}

// The scale the bars share: 0 and every interval end in view.
std::pair<double, double> DeltaRange(const AblationPolicyResult& p) {
  double lo = 0, hi = 0;
  for (size_t m = 0; m < p.delta_nll.size(); ++m)
    for (double v : {p.delta_nll[m], p.delta_low[m], p.delta_high[m]})
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (hi - lo <= 0) hi = lo + 1;
  return {lo, hi};
}

// ΔNLL bars with their intervals, one per domain, around a zero line.
void DrawDeltaBars(const AblationOutcome& o, const AblationPolicyResult& p) {
  ImGui::Spacing();
  ImGui::TextUnformatted("\xce\x94NLL (nats per prediction)");
  // Plain variables, not a structured binding: clang 14 cannot capture those in the lambda.
  const auto range = DeltaRange(p);
  const double lo = range.first, hi = range.second;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
  const float label_w = 140,
              width = std::max(200.0f, ImGui::GetContentRegionAvail().x - label_w - 20);
  const float row_h = ImGui::GetTextLineHeightWithSpacing() + 4;
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  auto x_of = [&](double v) {
    return p0.x + label_w + static_cast<float>((v - lo) / (hi - lo)) * width;
  };
  for (size_t m = 0; m < p.delta_nll.size(); ++m) {
    const float y = p0.y + row_h * static_cast<float>(m);
    dl->AddText(ImVec2(p0.x, y + 2), text, RowName(o, m).c_str());
    const double v = p.delta_nll[m];
    if (std::isfinite(v)) {
      const ImU32 fill = v > 0 ? IM_COL32(214, 96, 77, 255) : IM_COL32(67, 147, 195, 255);
      dl->AddRectFilled(ImVec2(std::min(x_of(0), x_of(v)), y + 3),
                        ImVec2(std::max(x_of(0), x_of(v)) + 1, y + row_h - 3), fill);
    }
    if (std::isfinite(p.delta_low[m]) && std::isfinite(p.delta_high[m])) {
      const float yc = y + row_h / 2;
      dl->AddLine(ImVec2(x_of(p.delta_low[m]), yc), ImVec2(x_of(p.delta_high[m]), yc), text, 1.5f);
      for (double e : {p.delta_low[m], p.delta_high[m]})
        dl->AddLine(ImVec2(x_of(e), yc - 4), ImVec2(x_of(e), yc + 4), text, 1.5f);
    }
  }
  const float bottom = p0.y + row_h * static_cast<float>(p.delta_nll.size());
  dl->AddLine(ImVec2(x_of(0), p0.y), ImVec2(x_of(0), bottom), text);
  char buf[32];
  for (double t : {lo, 0.0, hi}) {
    std::snprintf(buf, sizeof(buf), "%+.3g", t);
    const float tw = ImGui::CalcTextSize(buf).x;
    dl->AddText(ImVec2(std::clamp(x_of(t) - tw / 2, p0.x + label_w, p0.x + label_w + width - tw),
                       bottom + 2),
                text, buf);
  }
  ImGui::Dummy(ImVec2(label_w + width, bottom - p0.y + ImGui::GetTextLineHeight() + 4));
}

}  // namespace

AblationRequest AblationView::MakeRequest(const StudioData& d, const Selection& sel) const {
  AblationRequest r;
  r.target = target_;
  r.layer = sel.layer;
  r.experts = sel.experts;
  r.r = r_;
  r.k = k_;
  r.mode = DisableModeAt(mode_);
  r.trace = d.trace.info.path;
  if (sel.domain >= 0 && sel.domain < d.num_domains()) r.domain = d.domains[sel.domain];
  r.model_dir = ModelDir(d);
  return r;
}

void AblationView::DrawControls(const StudioData& d, const Selection& sel,
                                const AblationStatus& status) {
  using Target = AblationRequest::Target;
  const int E = std::max(1, d.trace.info.num_experts);
  int target = static_cast<int>(target_);
  ImGui::RadioButton("selected experts", &target, static_cast<int>(Target::kExperts));
  ImGui::SameLine();
  ImGui::RadioButton("top-r disabled", &target, static_cast<int>(Target::kTopR));
  ImGui::SameLine();
  ImGui::RadioButton("top-k = k", &target, static_cast<int>(Target::kTopK));
  target_ = static_cast<Target>(target);
  switch (target_) {
    case Target::kExperts: {
      if (sel.experts.empty()) {
        ImGui::TextDisabled("select experts in a heatmap (ctrl+click adds)");
      } else {
        std::string list;
        for (int e : sel.experts) list += (list.empty() ? "" : ", ") + std::to_string(e);
        ImGui::Text("layer %d, expert%s %s", sel.layer, sel.experts.size() > 1 ? "s" : "",
                    list.c_str());
      }
      ImGui::SameLine();
      DisableModeCombo("semantics", &mode_);
      break;
    }
    case Target::kTopR:
      ImGui::SetNextItemWidth(160);
      ImGui::SliderInt("r (every token's r best experts, every layer)", &r_, 1, std::max(1, E - 1));
      break;
    case Target::kTopK:
      ImGui::SetNextItemWidth(160);
      ImGui::SliderInt("k (experts per token, every layer)", &k_, 1, E);
      break;
  }
  r_ = std::clamp(r_, 1, std::max(1, E - 1));
  k_ = std::clamp(k_, 1, E);
  const int row = DomainRow(d, sel.domain);
  ImGui::TextDisabled("documents: %s   model: %s", DomainName(d, row).c_str(),
                      ModelDir(d).empty() ? "(none: open one)" : ModelDir(d).c_str());

  const bool can_run = job_.run && !status.running && !ModelDir(d).empty() &&
                       (target_ != Target::kExperts || !sel.experts.empty());
  ImGui::BeginDisabled(!can_run);
  if (ImGui::Button("Run")) {
    policy_ = -1;
    job_.run(MakeRequest(d, sel));
  }
  ImGui::EndDisabled();
  if (status.running) {
    ImGui::SameLine();
    ImGui::ProgressBar(static_cast<float>(status.progress), ImVec2(200, 0));
    ImGui::SameLine();
    if (ImGui::Button("Cancel") && job_.cancel) job_.cancel();
  } else if (!job_.run) {
    ImGui::SameLine();
    ImGui::TextDisabled("ablations run in moescope-studio's window");
  }
  if (!status.error.empty())
    ImGui::TextColored(ImVec4(0.9f, 0.2f, 0.2f, 1), "%s", status.error.c_str());
  else if (status.cancelled)
    ImGui::TextDisabled("cancelled");
}

const AblationPolicyResult& AblationView::DrawPolicyChoice(const AblationOutcome& o) {
  const int last = static_cast<int>(o.policies.size()) - 1;
  if (policy_ < 1 || policy_ > last) policy_ = last;
  // A choice made here shows from the next frame on; this one finishes with `p`.
  const AblationPolicyResult& p = o.policies[static_cast<size_t>(policy_)];
  ImGui::Separator();
  ImGui::Text("%s vs. the unmodified model: %lld documents, %lld predictions, %.1f s",
              p.name.c_str(), static_cast<long long>(o.documents), static_cast<long long>(o.tokens),
              o.seconds);
  if (last > 1) {
    ImGui::SameLine();
    ImGui::SetNextItemWidth(160);
    if (ImGui::BeginCombo("policy", p.name.c_str())) {
      for (int i = 1; i <= last; ++i)
        if (ImGui::Selectable(o.policies[static_cast<size_t>(i)].name.c_str(), i == policy_))
          policy_ = i;
      ImGui::EndCombo();
    }
  }
  return p;
}

bool AblationView::DrawDeltaTable(const AblationOutcome& o, const AblationPolicyResult& p) {
  const ImGuiTableFlags flags =
      ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit;
  char ci_header[48];
  std::snprintf(ci_header, sizeof(ci_header), "%.0f%% CI", o.ci_level * 100);
  if (!ImGui::BeginTable("delta", 8, flags)) return false;
  for (const char* h :
       std::initializer_list<const char*>{"domain", "predictions", "NLL base", "NLL ablated",
                                          "\xce\x94NLL", ci_header, "KL", "top-1 agree"})
    ImGui::TableSetupColumn(h);
  ImGui::TableHeadersRow();
  for (size_t m = 0; m < p.delta_nll.size(); ++m) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(RowName(o, m).c_str());
    ImGui::TableNextColumn();
    ImGui::Text("%lld", static_cast<long long>(p.tokens[m]));
    ImGui::TableNextColumn();
    ImGui::Text("%.4f", p.base_nll[m]);
    ImGui::TableNextColumn();
    ImGui::Text("%.4f", p.policy_nll[m]);
    ImGui::TableNextColumn();
    ImGui::Text("%+.4f", p.delta_nll[m]);
    ImGui::TableNextColumn();
    if (std::isnan(p.delta_low[m]))
      ImGui::TextDisabled("-");
    else
      ImGui::Text("[%+.4f, %+.4f]", p.delta_low[m], p.delta_high[m]);
    ImGui::TableNextColumn();
    ImGui::Text("%.4f", p.kl[m]);
    ImGui::TableNextColumn();
    ImGui::Text("%.3f", p.agreement[m]);
    ++drawn_rows_;
  }
  ImGui::EndTable();
  return true;
}

void AblationView::DrawResults(const AblationOutcome& o, Selection& sel) {
  drawn_rows_ = 0;
  if (o.policies.size() < 2) return;
  const AblationPolicyResult& p = DrawPolicyChoice(o);
  if (!DrawDeltaTable(o, p)) return;
  DrawDeltaBars(o, p);

  if (p.experts <= 0) return;  // the run kept no token-level diff
  ImGui::Separator();
  if (ImGui::BeginTable("diff", 2, ImGuiTableFlags_SizingStretchSame)) {
    ImGui::TableNextColumn();
    DrawChanges(p, sel);
    ImGui::TableNextColumn();
    DrawRoutingDiff(p, sel);
    ImGui::EndTable();
  }
}

void AblationView::DrawChanges(const AblationPolicyResult& p, Selection& sel) {
  ImGui::Text("Changed predictions: %lld of %lld (%.1f%%)",
              static_cast<long long>(p.changed_predictions), static_cast<long long>(p.predictions),
              p.predictions > 0 ? 100.0 * p.changed_predictions / p.predictions : 0.0);
  if (static_cast<int64_t>(p.changes.size()) < p.changed_predictions) {
    ImGui::SameLine();
    ImGui::TextDisabled("(the %zu largest |\xce\x94NLL|)", p.changes.size());
  }
  if (p.changes.empty()) return;
  const ImGuiTableFlags flags = ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_ScrollY | ImGuiTableFlags_SizingFixedFit;
  const float height = ImGui::GetTextLineHeightWithSpacing() * 12;
  if (!ImGui::BeginTable("changes", 5, flags, ImVec2(0, height))) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  // The document last: source ids are long, the token columns must stay in view.
  for (const char* h : std::initializer_list<const char*>{
           "\xce\x94NLL", "token", "top-1 before \xe2\x86\x92 after (true next)", "pos",
           "document"})
    ImGui::TableSetupColumn(h);
  ImGui::TableHeadersRow();
  ImGuiListClipper clipper;
  clipper.Begin(static_cast<int>(p.changes.size()));
  while (clipper.Step())
    for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i) {
      const AblationChangeRow& c = p.changes[static_cast<size_t>(i)];
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::PushID(i);
      const bool selected = c.document == sel.document && sel.token_begin == c.position &&
                            sel.token_end == c.position + 1;
      char delta[32];
      std::snprintf(delta, sizeof(delta), "%+.3f", c.delta_nll);
      ImGui::PushStyleColor(ImGuiCol_Text, c.delta_nll > 0 ? ImVec4(0.84f, 0.38f, 0.30f, 1)
                                                           : ImVec4(0.26f, 0.58f, 0.76f, 1));
      // A row selects its token: the token map shows the document with the token selected.
      const bool clicked = ImGui::Selectable(delta, selected, ImGuiSelectableFlags_SpanAllColumns);
      ImGui::PopStyleColor();
      if (clicked && c.document >= 0) {
        sel.document = c.document;
        sel.token_begin = c.position;
        sel.token_end = c.position + 1;
      }
      if (ImGui::IsItemHovered())
        ImGui::SetTooltip(
            "token id %d; top-1 id %d \xe2\x86\x92 %d; true next id %d\nclick: show it in "
            "the token map",
            c.token_id, c.before_id, c.after_id, c.target_id);
      ImGui::PopID();
      ImGui::TableNextColumn();
      ImGui::Text("'%s'", ShownToken(c.token).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("'%s' \xe2\x86\x92 '%s'  ('%s')", ShownToken(c.before).c_str(),
                  ShownToken(c.after).c_str(), ShownToken(c.target).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%d", c.position);
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(c.source_id.c_str());
      ++drawn_change_rows_;
    }
  ImGui::EndTable();
}

double AblationView::RoutingCell(const AblationPolicyResult& p, int layer, int from, int to) {
  if (from == to) return kNoValue;  // an expert kept is no move; none -> none is nothing
  return static_cast<double>(p.Moved(layer, from, to));
}

ColorScale AblationView::RoutingScale(const AblationPolicyResult& p, int layer) {
  ColorScale s;
  s.min = 0;
  s.max = 1;
  for (int i = 0; i <= p.experts; ++i)
    for (int j = 0; j <= p.experts; ++j)
      if (i != j) s.max = std::max(s.max, static_cast<double>(p.Moved(layer, i, j)));
  return s;
}

void AblationView::DrawRoutingDiff(const AblationPolicyResult& p, Selection& sel) {
  const int L = p.layers, E = p.experts;
  int layer = std::clamp(sel.layer, 0, L - 1);
  routing_layer_ = layer;
  ImGui::Text("Routing diff at layer %d: tokens moved from expert (row) to expert (column)", layer);
  ImGui::TextDisabled("%lld tokens compared; 'none': the policy selects fewer (or more) experts",
                      static_cast<long long>(p.routed_tokens));
  std::vector<std::string> labels;
  for (int e = 0; e < E; ++e) labels.push_back(std::string("e").append(std::to_string(e)));
  labels.push_back("none");
  const ColorScale scale = RoutingScale(p, layer);
  HeatmapSpec spec;
  spec.id = "moves";
  spec.rows = spec.cols = E + 1;
  spec.value = [&](int r, int c) { return RoutingCell(p, layer, r, c); };
  spec.scale = scale;
  // The per-layer table goes beside the matrix when both fit with cells of at least 24 pixels
  // (room for counts), else under it.
  const ImVec2 start = ImGui::GetCursorScreenPos();
  const float avail = std::max(120.0f, ImGui::GetContentRegionAvail().x);
  const float table_w = ImGui::CalcTextSize("L00 | 000000 (00.0%) | 000000 (00.0%) |").x + 40;
  const float label_w = ImGui::CalcTextSize("none").x + 12;
  const float beside_cell = (avail - table_w - 24 - label_w) / static_cast<float>(E + 1);
  const bool beside = beside_cell >= 24;
  const float size =
      std::clamp(beside ? beside_cell : (avail - label_w) / static_cast<float>(E + 1), 8.0f, 40.0f);
  spec.cell = ImVec2(size, size);
  spec.row_labels = labels;
  spec.col_labels = labels;
  spec.value_format = "%.0f";
  spec.selected = [&](int r, int) { return r < E && sel.HasExpert(r); };
  routing_grid_ = DrawHeatmap(spec);
  if (routing_grid_.hovered && routing_grid_.row >= 0 && routing_grid_.col >= 0) {
    const int from = routing_grid_.row, to = routing_grid_.col;
    ImGui::BeginTooltip();
    ImGui::Text("layer %d: %s \xe2\x86\x92 %s", layer, labels[static_cast<size_t>(from)].c_str(),
                labels[static_cast<size_t>(to)].c_str());
    if (from == to)
      ImGui::TextDisabled("no move");
    else
      ImGui::Text("%lld tokens", static_cast<long long>(p.Moved(layer, from, to)));
    ImGui::EndTooltip();
  }
  if (routing_grid_.clicked && routing_grid_.row >= 0 && routing_grid_.row < E)
    ClickExpert(sel, layer, routing_grid_.row);
  DrawLegend(scale, std::clamp(routing_grid_.grid_max.x - routing_grid_.grid_min.x, 160.0f, 320.0f),
             kNoValue, "", "%.0f");

  // Per layer: tokens whose experts changed; a row selects the layer.
  if (beside)
    ImGui::SetCursorScreenPos(ImVec2(routing_grid_.grid_max.x + 24, start.y));
  else
    ImGui::Spacing();
  const ImGuiTableFlags flags =
      ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit;
  ImGui::BeginGroup();
  if (ImGui::BeginTable("per_layer", 3, flags)) {
    ImGui::TableSetupColumn("layer");
    ImGui::TableSetupColumn("moved");
    ImGui::TableSetupColumn("1st changed");
    ImGui::TableHeadersRow();
    for (int l = 0; l < L; ++l) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      char name[16];
      std::snprintf(name, sizeof(name), "L%d", l);
      if (ImGui::Selectable(name, l == layer, ImGuiSelectableFlags_SpanAllColumns) &&
          l != sel.layer) {
        sel.layer = l;
        sel.experts.clear();
      }
      const double n = p.routed_tokens > 0 ? static_cast<double>(p.routed_tokens) : 1.0;
      ImGui::TableNextColumn();
      ImGui::Text("%lld (%.1f%%)", static_cast<long long>(p.changed[static_cast<size_t>(l)]),
                  100.0 * p.changed[static_cast<size_t>(l)] / n);
      ImGui::TableNextColumn();
      ImGui::Text("%lld (%.1f%%)", static_cast<long long>(p.first_changed[static_cast<size_t>(l)]),
                  100.0 * p.first_changed[static_cast<size_t>(l)] / n);
      ++drawn_layer_rows_;
    }
    ImGui::EndTable();
  }
  ImGui::TextDisabled("moved: the layer's experts differ;\n1st changed: its first expert");
  ImGui::EndGroup();
}

void AblationView::Draw(const StudioData& d, Selection& sel) {
  drawn_rows_ = drawn_change_rows_ = drawn_layer_rows_ = 0;
  routing_grid_ = HeatmapHit{};
  routing_layer_ = -1;
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  const AblationStatus status = job_.status ? job_.status() : AblationStatus{};
  DrawControls(d, sel, status);
  shown_ = status.outcome;
  if (shown_) DrawResults(*shown_, sel);
}

const AblationPolicyResult* AblationView::ShownPolicy() const {
  if (!shown_ || shown_->policies.size() < 2) return nullptr;
  const int last = static_cast<int>(shown_->policies.size()) - 1;
  return &shown_->policies[static_cast<size_t>(policy_ < 1 || policy_ > last ? last : policy_)];
}

void AblationView::WriteExtraCsv(const std::string& table, const StudioData&, const Selection&,
                                 std::ostream& out) const {
  const AblationPolicyResult* p = ShownPolicy();
  if (table == "changes") {
    out << "policy,document,source_id,position,token_id,token,target_id,target,before_id,before,"
           "after_id,after,delta_nll\n";
    if (p == nullptr) return;
    for (const AblationChangeRow& c : p->changes)
      out << CsvField(p->name) << ',' << c.document << ',' << CsvField(c.source_id) << ','
          << c.position << ',' << c.token_id << ',' << CsvField(c.token) << ',' << c.target_id
          << ',' << CsvField(c.target) << ',' << c.before_id << ',' << CsvField(c.before) << ','
          << c.after_id << ',' << CsvField(c.after) << ',' << CsvNumber(c.delta_nll) << '\n';
  } else if (table == "routing") {
    out << "policy,layer,from,to,tokens\n";
    if (p == nullptr) return;
    const int E = p->experts;
    auto name = [E](int e) { return e == E ? std::string("none") : std::to_string(e); };
    for (int l = 0; l < p->layers; ++l)
      for (int i = 0; i <= E; ++i)
        for (int j = 0; j <= E; ++j)
          if (const int64_t n = p->Moved(l, i, j); n > 0)
            out << CsvField(p->name) << ',' << l << ',' << name(i) << ',' << name(j) << ',' << n
                << '\n';
  }
}

void AblationView::WriteCsv(const StudioData&, const Selection&, std::ostream& out) const {
  out << "policy,kind,domain,tokens,base_nll,policy_nll,delta_nll,ci_low,ci_high,kl,agreement\n";
  if (!shown_) return;
  const AblationOutcome& o = *shown_;
  for (const AblationPolicyResult& p : o.policies)
    for (size_t m = 0; m < p.delta_nll.size(); ++m)
      out << CsvField(p.name) << ',' << p.kind << ','
          << CsvField(m < o.domains.size() ? o.domains[m] : "all") << ',' << p.tokens[m] << ','
          << CsvNumber(p.base_nll[m]) << ',' << CsvNumber(p.policy_nll[m]) << ','
          << CsvNumber(p.delta_nll[m]) << ',' << CsvNumber(p.delta_low[m]) << ','
          << CsvNumber(p.delta_high[m]) << ',' << CsvNumber(p.kl[m]) << ','
          << CsvNumber(p.agreement[m]) << '\n';
}

}  // namespace moe::studio
