#include "gui/views/prompt_view.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "gui/views/colors.h"
#include "gui/views/csv.h"
#include "gui/views/disable_mode_combo.h"
#include "gui/views/token_text.h"

namespace moe::studio {
namespace {

// A prompt the bundled model completes with some confidence (" be" at about 0.63), so that the
// effect of disabling experts shows.
constexpr const char* kDefaultPrompt = "Article 5. The parties shall";
constexpr size_t kMaxPromptBytes = 8192;
constexpr float kPadX = 2, kPadY = 2, kGap = 2;

void ExpertSwatch(int e, int E) {
  ImGui::PushStyleColor(ImGuiCol_Text, ExpertColor(e, E));
  ImGui::TextUnformatted("\xe2\x96\xa0");
  ImGui::PopStyleColor();
  ImGui::SameLine(0, 3);
}

// One layer's top-k of token t: "■ e3 0.612  ■ e5 0.388".
void TopkLine(const PromptRun& r, int64_t t, int layer) {
  const size_t row = r.Row(t, layer);
  bool first = true;
  for (int k = 0; k < r.kmax; ++k) {
    const int e = r.ids[row + k];
    if (e < 0) continue;
    if (!first) ImGui::SameLine(0, 10);
    first = false;
    ExpertSwatch(e, r.experts);
    ImGui::Text("e%d %.3f", e, r.weights[row + k]);
  }
}

void WriteRun(const char* name, const PromptRun& r, std::ostream& out) {
  for (int64_t t = 0; t < r.size(); ++t)
    for (int l = 0; l < r.layers; ++l)
      for (int k = 0; k < r.kmax; ++k) {
        const size_t i = r.Row(t, l) + k;
        if (r.ids[i] < 0) continue;
        out << name << ",token," << t << ',' << CsvField(r.text[static_cast<size_t>(t)]) << ','
            << r.token_id[static_cast<size_t>(t)] << ',' << l << ',' << k << ',' << r.ids[i] << ','
            << CsvNumber(r.weights[i]) << '\n';
      }
  for (size_t i = 0; i < r.next.size(); ++i)
    out << name << ",prediction," << i << ',' << CsvField(r.next[i].text) << ',' << r.next[i].id
        << ",,,," << CsvNumber(r.next[i].probability) << '\n';
}

}  // namespace

PromptView::PromptView() {
  set_text(kDefaultPrompt);
}

void PromptView::set_text(const std::string& text) {
  text_ = text.substr(0, kMaxPromptBytes - 1);
  buffer_.assign(kMaxPromptBytes, '\0');
  std::memcpy(buffer_.data(), text_.data(), text_.size());
  dirty_ = send_now_ = true;
}

void PromptView::set_disabled(std::vector<std::pair<int, int>> disabled) {
  std::sort(disabled.begin(), disabled.end());
  disabled.erase(std::unique(disabled.begin(), disabled.end()), disabled.end());
  disabled_ = std::move(disabled);
  dirty_ = send_now_ = true;
}

void PromptView::set_mode(const std::string& mode) {
  for (int m = 0; m < kDisableModes; ++m)
    if (mode == DisableModeLabel(m) && m != mode_) {
      mode_ = m;
      dirty_ = send_now_ = true;
    }
}

std::string PromptView::mode() const {
  return DisableModeLabel(mode_);
}

void PromptView::set_forced(std::vector<PromptForcedRoute> forced) {
  // One route per (layer, token): the last one given wins.
  std::vector<PromptForcedRoute> kept;
  for (auto it = forced.rbegin(); it != forced.rend(); ++it)
    if (!it->experts.empty() &&
        std::none_of(kept.begin(), kept.end(), [&](const PromptForcedRoute& k) {
          return k.layer == it->layer && k.position == it->position;
        }))
      kept.push_back(*it);
  std::reverse(kept.begin(), kept.end());
  forced_ = std::move(kept);
  dirty_ = send_now_ = true;
}

void PromptView::Send(const std::string& model_dir) {
  PromptRequest r;
  r.model_dir = model_dir;
  r.text = text_;
  r.disabled = disabled_;
  r.mode = DisableModeAt(mode_);
  r.forced = forced_;
  r.top_n = 5;
  r.serial = ++serial_;
  sent_model_ = model_dir;
  dirty_ = send_now_ = false;
  waiting_ = true;
  job_.run(r);
}

void PromptView::DrawTokens(const PromptRun& run, const PromptRun* base, int layer) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float font = ImGui::GetFontSize();
  const float line_h = font + 2 * kPadY + 4;
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const float wrap = std::max(100.0f, ImGui::GetContentRegionAvail().x);
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const bool hovered_window = ImGui::IsWindowHovered();
  float x = 0, y = 0;
  int64_t hovered = -1;
  for (int64_t t = 0; t < run.size(); ++t) {
    const std::string shown = ShownToken(run.text[static_cast<size_t>(t)]);
    const float w = shown.empty() ? 4 : ImGui::CalcTextSize(shown.c_str()).x + 2 * kPadX;
    if (x > 0 && x + w > wrap) {
      x = 0;
      y += line_h;
    }
    const ImVec2 a(origin.x + x, origin.y + y), b(a.x + w, a.y + font + kPadY);
    const int top1 = run.layers > 0 ? run.Top1(t, layer) : -1;
    const ImU32 bg = ExpertColor(top1, run.experts);
    dl->AddRectFilled(a, b, bg);
    dl->AddText(ImVec2(a.x + kPadX, a.y + kPadY * 0.5f), ContrastText(bg), shown.c_str());
    drawn_top1_.push_back(top1);
    ++drawn_tokens_;
    if (t == pick_token_)
      dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1),
                  ImGui::GetColorU32(ImGuiCol_Text), 0, 0, 2);
    if (hovered_window && mouse.x >= a.x && mouse.x < b.x + kGap && mouse.y >= a.y &&
        mouse.y < a.y + line_h)
      hovered = t;
    x += w + kGap;
    if (run.text[static_cast<size_t>(t)] == "\n") {
      x = 0;
      y += line_h;
    }
  }
  ImGui::Dummy(ImVec2(wrap, y + line_h));
  if (hovered < 0) return;
  // A click picks the token for a forced route.
  if (ImGui::IsMouseClicked(ImGuiMouseButton_Left) && static_cast<int>(hovered) != pick_token_) {
    pick_token_ = static_cast<int>(hovered);
    pick_experts_.clear();
  }
  const size_t i = static_cast<size_t>(hovered);
  ImGui::BeginTooltip();
  ImGui::Text("'%s'  id %d, token %lld of %lld", ShownToken(run.text[i]).c_str(), run.token_id[i],
              static_cast<long long>(hovered), static_cast<long long>(run.size()));
  ImGui::Separator();
  if (ImGui::BeginTable("topk", base ? 3 : 2,
                        ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg)) {
    if (base) {
      ImGui::TableSetupColumn("layer");
      ImGui::TableSetupColumn("modified routing");
      ImGui::TableSetupColumn("unmodified");
      ImGui::TableHeadersRow();
    }
    for (int l = 0; l < run.layers; ++l) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::Text("L%d", l);
      ImGui::TableNextColumn();
      TopkLine(run, hovered, l);
      if (base) {
        ImGui::TableNextColumn();
        TopkLine(*base, hovered, l);
      }
    }
    ImGui::EndTable();
  }
  ImGui::EndTooltip();
}

void PromptView::DrawPredictions(const PromptOutcome& o) {
  const PromptRun* ablated = o.ablated.get();
  ImGui::TextUnformatted("Next token");
  const ImGuiTableFlags flags =
      ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit;
  if (!ImGui::BeginTable("next", ablated ? 5 : 3, flags)) return;
  ImGui::TableSetupColumn("#");
  ImGui::TableSetupColumn("unmodified");
  ImGui::TableSetupColumn("p", ImGuiTableColumnFlags_WidthFixed, 150);
  if (ablated) {
    ImGui::TableSetupColumn("modified routing");
    ImGui::TableSetupColumn("p ", ImGuiTableColumnFlags_WidthFixed, 150);
  }
  ImGui::TableHeadersRow();
  // A probability as a bar with its value; a prediction that is not in the other run's list is
  // marked, so changed predictions stand out.
  // Bars are relative to the largest probability shown: a small model's probabilities are often
  // a few percent, which would leave bars on an absolute scale empty. The value is printed.
  double top = 1e-12;
  for (const PromptPrediction& p : o.base.next) top = std::max(top, p.probability);
  if (ablated)
    for (const PromptPrediction& p : ablated->next) top = std::max(top, p.probability);
  auto cell = [top](const PromptPrediction& p, const PromptRun* other) {
    ImGui::TableNextColumn();
    bool elsewhere = other == nullptr;
    if (other)
      for (const PromptPrediction& q : other->next) elsewhere |= q.id == p.id;
    std::string shown(1, '\'');  // appended: "'" + string trips GCC 12's false -Wrestrict
    shown += ShownToken(p.text);
    shown += '\'';
    if (elsewhere)
      ImGui::TextUnformatted(shown.c_str());
    else
      ImGui::TextColored(ImVec4(0.85f, 0.35f, 0.1f, 1), "%s *", shown.c_str());
    ImGui::TableNextColumn();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f", p.probability);
    ImGui::ProgressBar(static_cast<float>(p.probability / top), ImVec2(-1, 0), buf);
  };
  const size_t n = std::max(o.base.next.size(), ablated ? ablated->next.size() : 0);
  for (size_t i = 0; i < n; ++i) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::Text("%zu", i + 1);
    if (i < o.base.next.size())
      cell(o.base.next[i], ablated);
    else {
      ImGui::TableNextColumn();
      ImGui::TableNextColumn();
    }
    if (ablated && i < ablated->next.size()) cell(ablated->next[i], &o.base);
    ++drawn_predictions_;
  }
  ImGui::EndTable();
  ImGui::TextDisabled("bars: relative to the largest probability shown%s",
                      ablated ? "; * not among the other run's top predictions" : "");
}

void PromptView::DrawGrid(int layers, int experts, const Selection& sel) {
  ImGui::TextUnformatted("Experts (unchecked = disabled)");
  ImGui::SameLine();
  if (DisableModeCombo("semantics", &mode_, 130)) dirty_ = send_now_ = true;
  ImGui::SameLine();
  const bool can_disable = !sel.experts.empty() && sel.layer < layers;
  ImGui::BeginDisabled(!can_disable);
  if (ImGui::SmallButton("disable selected")) {
    auto d = disabled_;
    for (int e : sel.experts)
      if (e < experts) d.emplace_back(sel.layer, e);
    set_disabled(std::move(d));
  }
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::BeginDisabled(disabled_.empty());
  if (ImGui::SmallButton("enable all")) set_disabled({});
  ImGui::EndDisabled();
  // One table per block of experts: ImGui tables hold at most 64 columns, and 32 checkboxes
  // are about as many as a row shows (E = 128 gives four blocks, one under the other).
  constexpr int kBlock = 32;
  const ImGuiTableFlags flags = ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg;
  for (int first = 0; first < experts; first += kBlock) {
    const int last = std::min(experts, first + kBlock);
    ImGui::PushID(first);
    if (!ImGui::BeginTable("grid", last - first + 1, flags)) {
      ImGui::PopID();
      return;
    }
    ImGui::TableSetupColumn("");
    for (int e = first; e < last; ++e) {
      char name[16];
      std::snprintf(name, sizeof(name), "e%d", e);
      ImGui::TableSetupColumn(name);
    }
    ImGui::TableHeadersRow();
    ImGui::PushStyleVar(ImGuiStyleVar_FramePadding, ImVec2(1, 1));
    for (int l = 0; l < layers; ++l) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::Text("L%d", l);
      for (int e = first; e < last; ++e) {
        ImGui::TableNextColumn();
        const auto key = std::make_pair(l, e);
        const bool off = std::binary_search(disabled_.begin(), disabled_.end(), key);
        bool on = !off;
        ImGui::PushID(l * experts + e);
        ImGui::PushStyleColor(ImGuiCol_CheckMark, ExpertColor(e, experts));
        if (ImGui::Checkbox("##on", &on)) {
          auto d = disabled_;
          if (on)
            d.erase(std::find(d.begin(), d.end(), key));
          else
            d.push_back(key);
          set_disabled(std::move(d));
        }
        ImGui::PopStyleColor();
        ImGui::PopID();
      }
    }
    ImGui::PopStyleVar();
    ImGui::EndTable();
    ImGui::PopID();
  }
}

void PromptView::DrawForced(const PromptRun& run, int layer) {
  ImGui::TextUnformatted("Forced routes");
  ImGui::SameLine();
  ImGui::TextDisabled("click a token, choose its experts at layer %d, Force", layer);
  if (pick_token_ >= run.size()) pick_token_ = -1;  // the prompt got shorter
  if (pick_token_ < 0) {
    ImGui::TextDisabled("no token picked");
  } else {
    ImGui::Text("token %d '%s' at layer %d takes:", pick_token_,
                ShownToken(run.text[static_cast<size_t>(pick_token_)]).c_str(), layer);
    for (int e = 0; e < run.experts; ++e) {
      ImGui::SameLine();
      const auto at = std::find(pick_experts_.begin(), pick_experts_.end(), e);
      bool on = at != pick_experts_.end();
      ImGui::PushID(1000 + e);
      ImGui::PushStyleColor(ImGuiCol_CheckMark, ExpertColor(e, run.experts));
      char name[16];
      std::snprintf(name, sizeof(name), "e%d", e);
      if (ImGui::Checkbox(name, &on)) {
        if (on)
          pick_experts_.push_back(e);  // in the order chosen: the first gets the most weight
        else
          pick_experts_.erase(at);
      }
      ImGui::PopStyleColor();
      ImGui::PopID();
    }
    ImGui::SameLine();
    ImGui::BeginDisabled(pick_experts_.empty());
    if (ImGui::SmallButton("Force")) {
      auto f = forced_;
      f.push_back({layer, pick_token_, pick_experts_});
      set_forced(std::move(f));
    }
    ImGui::EndDisabled();
  }
  int remove = -1;
  for (size_t i = 0; i < forced_.size(); ++i) {
    const PromptForcedRoute& f = forced_[i];
    std::string experts;
    for (int e : f.experts) {
      experts += experts.empty() ? "e" : ", e";
      experts += std::to_string(e);
    }
    const std::string token = f.position < run.size()
                                  ? ShownToken(run.text[static_cast<size_t>(f.position)])
                                  : std::string("(past the prompt)");
    ImGui::BulletText("layer %d, token %d '%s' \xe2\x86\x92 %s", f.layer, f.position, token.c_str(),
                      experts.c_str());
    ImGui::SameLine();
    ImGui::PushID(static_cast<int>(i));
    if (ImGui::SmallButton("remove")) remove = static_cast<int>(i);
    ImGui::PopID();
  }
  if (remove >= 0) {
    auto f = forced_;
    f.erase(f.begin() + remove);
    set_forced(std::move(f));
  }
}

void PromptView::Draw(const StudioData&, Selection& sel) {
  drawn_tokens_ = drawn_predictions_ = 0;
  drawn_top1_.clear();
  const std::string model_dir = job_.model_dir ? job_.model_dir() : std::string();
  if (!job_.run || !job_.status) {
    ImGui::TextDisabled("prompts run in moescope-studio's window");
    return;
  }
  if (model_dir.empty()) {
    ImGui::TextDisabled("No model is open: File > Open model... (Ctrl+M)");
    return;
  }
  ImGui::TextDisabled("Enter runs now, Ctrl+Enter adds a line; edits run when typing pauses");
  const bool enter = ImGui::InputTextMultiline(
      "##prompt", buffer_.data(), buffer_.size(),
      ImVec2(-1, ImGui::GetTextLineHeight() * 3 + ImGui::GetStyle().FramePadding.y * 2),
      ImGuiInputTextFlags_EnterReturnsTrue | ImGuiInputTextFlags_CtrlEnterForNewLine);
  const double now = ImGui::GetTime();
  if (ImGui::IsItemEdited()) {
    text_ = buffer_.data();
    dirty_ = true;
    edited_at_ = now;
  }
  if (enter) send_now_ = dirty_ = true;
  if (model_dir != sent_model_) send_now_ = dirty_ = true;

  PromptStatus status = job_.status();
  if (waiting_ && !status.running) waiting_ = false;
  if (dirty_ && (send_now_ || now - edited_at_ >= kDebounceSeconds)) {
    Send(model_dir);
    status = job_.status();  // a synchronous job (--export-views) has finished already
    if (!status.running) waiting_ = false;
  }
  if (status.outcome) shown_ = status.outcome;

  ImGui::TextDisabled("model: %s", model_dir.c_str());
  if (waiting_) {
    ImGui::SameLine();
    ImGui::TextDisabled("  running ...");
  }
  if (!status.error.empty())
    ImGui::TextColored(ImVec4(0.9f, 0.2f, 0.2f, 1), "%s", status.error.c_str());
  if (!shown_) return;
  const PromptOutcome& o = *shown_;
  const PromptRun& run = o.ablated ? *o.ablated : o.base;
  const int L = run.layers;
  if (L > 0) {
    int layer = std::clamp(sel.layer, 0, L - 1);
    ImGui::SetNextItemWidth(200);
    if (ImGui::SliderInt("layer", &layer, 0, L - 1)) {
      if (layer != sel.layer) sel.experts.clear();
      sel.layer = layer;
    }
    ImGui::SameLine();
    ImGui::TextDisabled("%lld tokens; box colour: first expert at layer %d%s; %.0f ms",
                        static_cast<long long>(run.size()), layer,
                        o.ablated ? " with the modified routing" : "", o.seconds * 1000);
    ImGui::Separator();
    DrawTokens(run, o.ablated ? &o.base : nullptr, layer);
  }
  ImGui::Separator();
  DrawPredictions(o);
  ImGui::Separator();
  DrawGrid(L, run.experts, sel);
  if (L > 0) {
    ImGui::Separator();
    DrawForced(o.base, std::clamp(sel.layer, 0, L - 1));
  }
}

void PromptView::WriteCsv(const StudioData&, const Selection&, std::ostream& out) const {
  out << "run,kind,index,text,id,layer,rank,expert,value\n";
  if (!shown_) return;
  WriteRun("base", shown_->base, out);
  if (shown_->ablated) WriteRun("disabled", *shown_->ablated, out);
}

}  // namespace moe::studio
