#include "gui/views/overview_view.h"

#include <cstdio>

#include "gui/views/colors.h"
#include "gui/views/csv.h"

namespace moe::studio {
namespace {

std::string Join(const std::vector<float>& v) {
  std::string s;
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%g", i ? ", " : "", v[i]);
    s += buf;
  }
  return s;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Policy(const TraceFacts& t) {
  if (t.policy_empty) return "none (the model's own routing)";
  return t.info.routing_policy;
}

// The windowing rule in words; the attribute as written when the loader could not parse it.
std::string Windowing(const TraceFacts& t) {
  const WindowingFacts& w = t.windowing;
  if (!w.known)
    return t.info.windowing.empty() || t.info.windowing == "{}" ? "not recorded" : t.info.windowing;
  std::string s = "window " + std::to_string(w.max_window) + " tokens, stride " +
                  std::to_string(w.stride) + " (";
  if (w.stride >= w.max_window)
    s += "windows do not overlap";
  else
    s += "each later window re-runs " + std::to_string(w.max_window - w.stride) +
         " tokens as context only";
  return s + "), context length " + std::to_string(w.context_length);
}

}  // namespace

std::vector<OverviewRow> OverviewRows(const StudioData& d) {
  std::vector<OverviewRow> r;
  const TraceFacts& t = d.trace;
  const TraceAttributes& i = t.info;
  auto add = [&](const char* section, const char* key, std::string value) {
    r.push_back({section, key, std::move(value)});
  };
  add("trace", "file", i.path);
  add("trace", "complete", i.complete ? "yes" : "no (committed prefix)");
  add("trace", "format version", std::to_string(i.format_version));
  add("trace", "engine version", i.engine_version);
  add("trace", "created", i.created);
  add("trace", "documents", std::to_string(t.documents));
  add("trace", "tokens", std::to_string(t.tokens));
  add("trace", "domains", std::to_string(d.domains.size()));
  add("trace", "model family", i.model_family);
  if (!i.router_recipe.empty()) add("trace", "router", i.router_recipe);
  std::string dense;
  for (int l = 0; l < i.num_layers; ++l)
    if (!t.Routes(l)) dense += (dense.empty() ? "" : ", ") + std::to_string(l);
  add("trace", "layers",
      std::to_string(i.num_layers) + (dense.empty() ? "" : " (dense, no router: " + dense + ")"));
  add("trace", "experts", std::to_string(i.num_experts));
  add("trace", "top_k", std::to_string(i.top_k));
  add("trace", "score_scale_factor", Join(i.score_scale_factor));
  add("trace", "router logits",
      i.record_logits
          ? std::to_string(t.logit_rows) + " rows (sample rate " + Num(i.logit_sample_rate) + ")"
          : "not recorded");
  add("trace", "routing policy", Policy(t));
  add("trace", "windowing", Windowing(t));
  add("hashes", "checkpoint sha256", i.checkpoint_sha256);
  add("hashes", "tokenizer sha256", i.tokenizer_sha256);
  add("hashes", "corpus sha256", i.corpus_sha256);
  add("model", "traced model", i.model_path);
  add("model", "open model", d.model.dir.empty() ? "none" : d.model.dir);
  add("model", "token text", d.model.tokens_from);
  add("statistics", "bootstrap replicates", std::to_string(d.bootstrap));
  add("statistics", "permutations", std::to_string(d.permutations));
  if (d.ci_level > 0) add("statistics", "interval level", Num(d.ci_level));
  for (size_t m = 0; m < d.domains.size(); ++m) {
    const int64_t docs = m < d.domain_documents.size() ? d.domain_documents[m] : 0;
    const int64_t tokens = m < d.domain_tokens.size() ? d.domain_tokens[m] : 0;
    r.push_back({"domains", d.domains[m],
                 std::to_string(docs) + " documents, " + std::to_string(tokens) + " tokens"});
  }
  for (const auto& [k, v] : t.config) r.push_back({"config", k, v});
  for (const std::string& n : d.notes) r.push_back({"notes", "note", n});
  return r;
}

void OverviewView::Draw(const StudioData& data, Selection& sel) {
  if (data.empty()) {
    DrawNoTrace();
    return;
  }
  const std::vector<OverviewRow> rows = OverviewRows(data);
  const ImGuiTableFlags flags =
      ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingStretchProp;
  auto section = [&](const char* name, const char* title, bool open) {
    ImGui::SetNextItemOpen(open, ImGuiCond_Once);
    if (!ImGui::CollapsingHeader(title)) return;
    if (!ImGui::BeginTable(name, 2, flags)) return;
    ImGui::TableSetupColumn("key", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("value", ImGuiTableColumnFlags_WidthStretch);
    for (const OverviewRow& r : rows) {
      if (r.section != name) continue;
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(r.key.c_str());
      ImGui::TableNextColumn();
      ImGui::TextWrapped("%s", r.value.c_str());
    }
    ImGui::EndTable();
  };
  section("trace", "Trace", true);

  // Domains: a selectable table (the domain facet of every view).
  ImGui::SetNextItemOpen(true, ImGuiCond_Once);
  if (ImGui::CollapsingHeader("Domains") &&
      ImGui::BeginTable(
          "domains", 3,
          ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit)) {
    ImGui::TableSetupColumn("domain");
    ImGui::TableSetupColumn("documents");
    ImGui::TableSetupColumn("tokens");
    ImGui::TableHeadersRow();
    const int M = data.num_domains();
    for (int m = -1; m < M; ++m) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      const std::string label = m < 0 ? std::string("all domains") : data.domains[m];
      if (ImGui::Selectable(label.c_str(), sel.domain == m, ImGuiSelectableFlags_SpanAllColumns))
        sel.domain = m;
      ImGui::TableNextColumn();
      ImGui::Text("%lld",
                  static_cast<long long>(m < 0 ? data.trace.documents : data.domain_documents[m]));
      ImGui::TableNextColumn();
      ImGui::Text("%lld",
                  static_cast<long long>(m < 0 ? data.trace.tokens : data.domain_tokens[m]));
    }
    ImGui::EndTable();
  }
  section("model", "Model", true);
  section("statistics", "Statistics", true);
  section("hashes", "Hashes", true);
  section("config", "Model config (config.json of the traced model)", false);
  if (!data.notes.empty()) {
    ImGui::SetNextItemOpen(true, ImGuiCond_Once);
    if (ImGui::CollapsingHeader("Notes"))
      for (const std::string& n : data.notes) {
        ImGui::Bullet();
        ImGui::TextWrapped("%s", n.c_str());
      }
  }
}

void OverviewView::WriteCsv(const StudioData& data, const Selection&, std::ostream& out) const {
  out << "section,key,value\n";
  for (const OverviewRow& r : OverviewRows(data))
    out << CsvField(r.section) << ',' << CsvField(r.key) << ',' << CsvField(r.value) << '\n';
}

}  // namespace moe::studio
