#include "gui/views/ablation_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "gui/views/csv.h"
#include "gui/views/load_view.h"

namespace moe::studio {
namespace {

constexpr const char* kModes[] = {"reroute", "drop", "drop-renorm"};
constexpr const char* kModeHelp[] = {
    "the disabled experts are skipped and each token takes its next-best experts",
    "the disabled experts' outputs are dropped; the other weights stay as they were",
    "the disabled experts' outputs are dropped and the remaining weights renormalized"};

std::string RowName(const AblationOutcome& o, size_t row) {
  return row < o.domains.size() ? o.domains[row] : std::string("all domains");
}

// The model the panel runs: the open one, else the one the trace was made with.
std::string ModelDir(const StudioData& d) {
  return d.model.dir.empty() ? d.trace.model_path : d.model.dir;
}

}  // namespace

AblationRequest AblationView::MakeRequest(const StudioData& d, const Selection& sel) const {
  AblationRequest r;
  r.target = target_;
  r.layer = sel.layer;
  r.experts = sel.experts;
  r.r = r_;
  r.k = k_;
  r.mode = kModes[mode_];
  r.trace = d.trace.path;
  if (sel.domain >= 0 && sel.domain < d.num_domains()) r.domain = d.domains[sel.domain];
  r.model_dir = ModelDir(d);
  return r;
}

void AblationView::DrawControls(const StudioData& d, const Selection& sel,
                                const AblationStatus& status) {
  using Target = AblationRequest::Target;
  const int E = std::max(1, d.trace.num_experts);
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
      ImGui::SetNextItemWidth(140);
      if (ImGui::BeginCombo("semantics", kModes[mode_])) {
        for (int m = 0; m < 3; ++m) {
          if (ImGui::Selectable(kModes[m], m == mode_)) mode_ = m;
          if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", kModeHelp[m]);
        }
        ImGui::EndCombo();
      }
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

void AblationView::DrawResults(const AblationOutcome& o) {
  drawn_rows_ = 0;
  if (o.policies.size() < 2) return;
  const int last = static_cast<int>(o.policies.size()) - 1;
  if (policy_ < 1 || policy_ > last) policy_ = last;
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
  // The bars share one scale: 0 and every interval end in view.
  double lo = 0, hi = 0;
  for (size_t m = 0; m < p.delta_nll.size(); ++m)
    for (double v : {p.delta_nll[m], p.delta_low[m], p.delta_high[m]})
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (hi - lo <= 0) hi = lo + 1;
  const ImGuiTableFlags flags =
      ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit;
  char ci_header[48];
  std::snprintf(ci_header, sizeof(ci_header), "%.0f%% CI", o.ci_level * 100);
  if (!ImGui::BeginTable("delta", 8, flags)) return;
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

  // ΔNLL bars with their intervals, one per domain, around a zero line.
  ImGui::Spacing();
  ImGui::TextUnformatted("\xce\x94NLL (nats per prediction)");
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

void AblationView::Draw(const StudioData& d, Selection& sel) {
  drawn_rows_ = 0;
  if (d.empty()) {
    DrawNoTrace();
    return;
  }
  const AblationStatus status = job_.status ? job_.status() : AblationStatus{};
  DrawControls(d, sel, status);
  shown_ = status.outcome;
  if (shown_) DrawResults(*shown_);
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
