#include "analysis/prune/importance_file.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {

namespace {

constexpr const char* kFormat = "moescope-importance";
constexpr int kVersion = 1;

nlohmann::json Number(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}

double NumberOf(const nlohmann::json& v, const std::string& where, const std::string& field) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number()) Fail(where, field + " must be a number or null, got " + Shown(v));
  return v.get<double>();
}

// [L][E] array of one field of a score.
nlohmann::json Grid(const ExpertImportance& r, const std::vector<ScoreValue>& v,
                    double ScoreValue::*field) {
  nlohmann::json grid = nlohmann::json::array();
  for (int l = 0; l < r.layers; ++l) {
    nlohmann::json row = nlohmann::json::array();
    for (int e = 0; e < r.experts; ++e)
      row.push_back(Number(v[static_cast<size_t>(l) * r.experts + e].*field));
    grid.push_back(row);
  }
  return grid;
}

void ReadGrid(const nlohmann::json& grid, const ExpertImportance& r, const std::string& where,
              const std::string& field, std::vector<ScoreValue>& v, double ScoreValue::*member) {
  if (!grid.is_array() || static_cast<int>(grid.size()) != r.layers)
    Fail(where, field + " must list " + std::to_string(r.layers) + " layers");
  for (int l = 0; l < r.layers; ++l) {
    const nlohmann::json& row = grid[static_cast<size_t>(l)];
    if (!row.is_array() || static_cast<int>(row.size()) != r.experts)
      Fail(where, field + "[" + std::to_string(l) + "] must list " + std::to_string(r.experts) +
                      " experts");
    for (int e = 0; e < r.experts; ++e)
      v[static_cast<size_t>(l) * r.experts + e].*member =
          NumberOf(row[static_cast<size_t>(e)], where,
                   field + "[" + std::to_string(l) + "][" + std::to_string(e) + "]");
  }
}

std::string Csv(const ExpertImportance& r) {
  std::ostringstream out;
  out << std::setprecision(9) << "layer,expert,score,value,ci_low,ci_high,routed\n";
  auto num = [&](double x) -> std::ostream& {
    if (std::isfinite(x)) out << x;
    return out;
  };
  for (int s = 0; s < kImportanceScores; ++s)
    for (int l = 0; l < r.layers; ++l) {
      if (!r.moe_layer[static_cast<size_t>(l)]) continue;
      for (int e = 0; e < r.experts; ++e) {
        const ScoreValue& v = r.At(static_cast<ImportanceScore>(s), l, e);
        out << l << ',' << e << ',' << ImportanceScoreName(static_cast<ImportanceScore>(s)) << ',';
        num(v.value) << ',';
        num(v.ci_low) << ',';
        num(v.ci_high) << ',' << r.routed[static_cast<size_t>(l) * r.experts + e] << '\n';
      }
    }
  return out.str();
}

}  // namespace

void WriteImportance(const std::filesystem::path& path, const ExpertImportance& r) {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["model"] = r.model;
  j["layers"] = r.layers;
  j["experts"] = r.experts;
  j["top_k"] = r.top_k;
  j["moe_layers"] = r.moe_layer;
  j["documents"] = r.documents;
  j["tokens"] = r.tokens;
  j["bootstrap"] = r.bootstrap;
  j["ci_level"] = r.ci_level;
  j["has_output_change"] = r.has_output_change;
  nlohmann::json routed = nlohmann::json::array();
  for (int l = 0; l < r.layers; ++l)
    routed.push_back(std::vector<int64_t>(r.routed.begin() + l * r.experts,
                                          r.routed.begin() + (l + 1) * r.experts));
  j["routed"] = routed;
  for (int s = 0; s < kImportanceScores; ++s) {
    const std::vector<ScoreValue>& v = r.scores[static_cast<size_t>(s)];
    j["scores"][ImportanceScoreName(static_cast<ImportanceScore>(s))] = {
        {"value", Grid(r, v, &ScoreValue::value)},
        {"ci_low", Grid(r, v, &ScoreValue::ci_low)},
        {"ci_high", Grid(r, v, &ScoreValue::ci_high)}};
  }
  WriteFileAtomically(path, j.dump(1) + "\n");
  WriteFileAtomically(path.string() + ".csv", Csv(r));
}

ExpertImportance ReadImportance(const std::filesystem::path& path) {
  const std::string where = path.string();
  const nlohmann::json j = ReadJsonFile(path);
  if (!j.is_object() || !j.contains("format") || j["format"] != kFormat)
    Fail(where, "format must be \"" + std::string(kFormat) + "\" (not an importance file)");
  if (JsonInt(j.value("version", nlohmann::json()), where, "version", kVersion, kVersion) !=
      kVersion)
    Fail(where, "unsupported version");
  ExpertImportance r;
  r.model = j.value("model", "");
  r.layers = JsonIntAs<int>(j.value("layers", nlohmann::json()), where, "layers", 1, 1 << 16);
  r.experts = JsonIntAs<int>(j.value("experts", nlohmann::json()), where, "experts", 1, 1 << 16);
  r.top_k = JsonIntAs<int>(j.value("top_k", nlohmann::json()), where, "top_k", 1, r.experts);
  r.documents = JsonInt(j.value("documents", nlohmann::json()), where, "documents", 0, INT64_MAX);
  r.tokens = JsonInt(j.value("tokens", nlohmann::json()), where, "tokens", 0, INT64_MAX);
  r.bootstrap = JsonIntAs<int>(j.value("bootstrap", nlohmann::json()), where, "bootstrap", 0);
  r.ci_level = NumberOf(j.value("ci_level", nlohmann::json()), where, "ci_level");
  r.has_output_change = j.value("has_output_change", false);
  const nlohmann::json& moe = j.value("moe_layers", nlohmann::json());
  if (!moe.is_array() || static_cast<int>(moe.size()) != r.layers)
    Fail(where, "moe_layers must list " + std::to_string(r.layers) + " layers");
  for (size_t l = 0; l < moe.size(); ++l)
    r.moe_layer.push_back(JsonIntAs<uint8_t>(moe[l], where, "moe_layers", 0, 1));
  const size_t cells = static_cast<size_t>(r.layers) * r.experts;
  std::vector<ScoreValue> routed(cells);
  ReadGrid(j.value("routed", nlohmann::json()), r, where, "routed", routed, &ScoreValue::value);
  for (const ScoreValue& v : routed) {
    if (!(v.value >= 0)) Fail(where, "routed must hold counts >= 0");
    r.routed.push_back(static_cast<int64_t>(v.value));
  }
  if (!j.contains("scores") || !j["scores"].is_object()) Fail(where, "scores is missing");
  r.scores.assign(kImportanceScores, std::vector<ScoreValue>(cells));
  for (int s = 0; s < kImportanceScores; ++s) {
    const std::string name = ImportanceScoreName(static_cast<ImportanceScore>(s));
    if (!j["scores"].contains(name)) Fail(where, "scores." + name + " is missing");
    const nlohmann::json& sj = j["scores"][name];
    std::vector<ScoreValue>& v = r.scores[static_cast<size_t>(s)];
    for (auto [field, member] : {std::pair{"value", &ScoreValue::value},
                                 {"ci_low", &ScoreValue::ci_low},
                                 {"ci_high", &ScoreValue::ci_high}})
      ReadGrid(sj.value(field, nlohmann::json()), r, where, "scores." + name + "." + field, v,
               member);
  }
  return r;
}

std::string FormatImportanceTable(const ExpertImportance& r, ImportanceScore score) {
  std::ostringstream out;
  out << ImportanceScoreName(score) << " per layer and expert (" << r.documents << " documents, "
      << r.tokens << " tokens";
  if (r.bootstrap > 0) out << ", " << r.ci_level * 100 << "% intervals over documents";
  out << ")\n" << std::setprecision(4);
  for (int l = 0; l < r.layers; ++l) {
    if (!r.moe_layer[static_cast<size_t>(l)]) continue;
    out << "layer " << l << ":";
    for (int e = 0; e < r.experts; ++e) {
      const ScoreValue& v = r.At(score, l, e);
      out << "  E" << e << " " << v.value;
      if (std::isfinite(v.ci_low)) out << " [" << v.ci_low << ", " << v.ci_high << "]";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace moe
