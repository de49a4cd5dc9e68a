#include "gui/model/results_loader.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include "analysis/cache/cache_sim_file.h"
#include "analysis/prune/prune_curve.h"
#include "analysis/replay/route_audit.h"
#include "core/error.h"

namespace moe::studio {

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kComparisonSuffix = ".vs-random.csv";
constexpr const char* kReplayHeader = "audit,layer,domain,metric,value,ci_low,ci_high,n";

ValueCi Of(const Estimate& e) {
  return {e.value, e.ci_low, e.ci_high};
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string FirstLine(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

PruneCurveData ToPruneCurve(const PruneCurveFile& f, const std::string& source) {
  PruneCurveData d;
  d.source = source;
  d.comparison_source = f.comparison_csv;
  d.domains = f.domains;
  const size_t rows = f.domains.size() + 1;
  std::map<std::string, size_t> set_index;
  for (const AblationResult& r : f.results) {
    if (r.kind != "prune") continue;
    const std::optional<PruneSetName> name = ParsePruneSetName(r.name);
    if (!name)
      Fail(source,
           "policy " + Quoted(r.name) +
               " of kind 'prune' is not named <score>-<percent>% as prune-curve names sets");
    PruneSet s;
    s.name = r.name;
    s.score = name->score;
    s.ratio = name->ratio;
    for (const AblationDomainResult& m : r.domains) {
      s.delta_nll.push_back(Of(m.delta_nll));
      s.tokens.push_back(m.tokens);
    }
    s.delta_nll.resize(rows), s.tokens.resize(rows);
    s.random_delta_nll.assign(rows, kNan);
    s.difference.assign(rows, ValueCi{});
    s.p_value.assign(rows, kNan);
    s.q_value.assign(rows, kNan);
    if (std::find(d.scores.begin(), d.scores.end(), s.score) == d.scores.end())
      d.scores.push_back(s.score);
    if (std::find(d.ratios.begin(), d.ratios.end(), s.ratio) == d.ratios.end())
      d.ratios.push_back(s.ratio);
    set_index[s.name] = d.sets.size();
    d.sets.push_back(std::move(s));
  }
  std::sort(d.ratios.begin(), d.ratios.end());
  // Controls: one per distinct random draw at a ratio (scores at one ratio share their draws).
  std::vector<std::pair<double, std::string>> seen;
  for (const AblationResult& r : f.results) {
    if (r.kind != "random_control") continue;  // sets name their control group too
    auto it = set_index.find(r.control_of);
    if (it == set_index.end()) continue;
    const double ratio = d.sets[it->second].ratio;
    if (std::find(seen.begin(), seen.end(), std::make_pair(ratio, r.policy_json)) != seen.end())
      continue;
    seen.emplace_back(ratio, r.policy_json);
    PruneControl c;
    c.name = r.name;
    c.ratio = ratio;
    for (const AblationDomainResult& m : r.domains) c.delta_nll.push_back(Of(m.delta_nll));
    c.delta_nll.resize(rows);
    d.controls.push_back(std::move(c));
  }
  std::stable_sort(d.controls.begin(), d.controls.end(),
                   [](const PruneControl& a, const PruneControl& b) { return a.ratio < b.ratio; });
  for (const PruneVsRandom& v : f.comparison) {
    auto it = set_index.find(v.set);
    if (it == set_index.end())
      Fail(f.comparison_csv, "names the set " + Quoted(v.set) + ", which " + source + " lacks");
    PruneSet& s = d.sets[it->second];
    const size_t m = static_cast<size_t>(v.domain);
    s.controls = v.controls;
    s.random_delta_nll[m] = v.random_delta_nll;
    s.difference[m] = Of(v.difference);
    s.p_value[m] = v.p_value;
    s.q_value[m] = v.q_value;
  }
  return d;
}

CacheCurveData ToCacheCurve(const CacheSimTable& t, const std::string& source) {
  CacheCurveData d;
  d.source = source;
  d.layers = t.layers, d.experts = t.experts, d.top_k = t.top_k;
  d.cold_start = t.cold_start;
  d.ci_level = t.ci_level;
  d.expert_bytes = t.expert_bytes;
  d.domains = t.domains;
  d.policies = t.policies;
  d.extra_fields = t.extra_fields;
  d.capacities = t.capacities;
  for (const CacheSimTableRow& r : t.rows) {
    CacheCurveRow x;
    x.layer = r.layer, x.domain = r.domain, x.policy = r.policy, x.capacity = r.capacity;
    x.hit_rate = {r.hit_rate, r.ci_low, r.ci_high};
    x.misses_per_token = r.misses_per_token;
    x.bytes_per_token = r.bytes_per_token;
    x.requests = r.requests, x.tokens = r.tokens, x.docs = r.docs;
    x.extra = r.extra;
    d.rows.push_back(std::move(x));
  }
  if (d.rows.empty()) Fail(source, "rows is empty: nothing to show");
  return d;
}

ReplayData ToReplay(const std::vector<RouteAudit>& audits, const std::string& source) {
  if (audits.empty()) Fail(source, "holds no audit rows");
  ReplayData d;
  d.source = source;
  for (const RouteAudit& a : audits) {
    ReplayAuditData x;
    x.reference = a.reference;
    x.subject = a.subject;
    for (const LayerAgreement& l : a.layers)
      x.layers.push_back({l.layer, l.tokens, Of(l.set_agreement), Of(l.top1_agreement)});
    x.domains = a.domains;
    for (const AblationDomainResult& m : a.nll) {
      x.delta_nll.push_back(Of(m.delta_nll));
      x.next_token_agreement.push_back(Of(m.agreement));
      x.reference_nll.push_back(m.base_nll);
      x.subject_nll.push_back(m.policy_nll);
      x.tokens.push_back(m.tokens);
    }
    d.audits.push_back(std::move(x));
  }
  return d;
}

}  // namespace

const char* ResultsKindName(ResultsKind kind) {
  switch (kind) {
    case ResultsKind::kPruneCurve:
      return "pruning curve";
    case ResultsKind::kCacheSim:
      return "cache simulation";
    case ResultsKind::kReplay:
      return "route replay";
  }
  return "?";
}

ResultsKind LoadResultsFile(const std::filesystem::path& file, ResultsData& into) {
  const std::string name = file.filename().string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) Fail(file.string(), "is not a readable file");
  if (EndsWith(name, kComparisonSuffix)) {
    const std::string s = file.string();
    const std::filesystem::path results =
        s.substr(0, s.size() - std::string(kComparisonSuffix).size());
    into.prune = ToPruneCurve(ReadPruneCurve(results), results.string());
    return ResultsKind::kPruneCurve;
  }
  if (name == "cache.csv") return LoadResultsFile(file.parent_path() / "cache.json", into);
  if (file.extension() == ".json") {
    into.cache = ToCacheCurve(ReadCacheSimTable(file), file.string());
    return ResultsKind::kCacheSim;
  }
  if (file.extension() == ".csv") {
    if (FirstLine(file).rfind("audit,", 0) != 0)
      Fail(file.string(),
           "is not an export of prune-curve, cache-sim or replay (the replay report's header is " +
               std::string(kReplayHeader) + ")");
    into.replay = ToReplay(ReadRouteAuditCsv(file), file.string());
    return ResultsKind::kReplay;
  }
  into.prune = ToPruneCurve(ReadPruneCurve(file), file.string());
  return ResultsKind::kPruneCurve;
}

std::vector<std::filesystem::path> FindResults(const std::filesystem::path& dir, ResultsData& into,
                                               std::vector<std::string>& errors) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) files.push_back(e.path());
    if (!e.is_directory(ec)) continue;
    std::error_code sub_ec;
    for (const auto& s : std::filesystem::directory_iterator(e.path(), sub_ec))
      if (s.is_regular_file(sub_ec)) files.push_back(s.path());
  }
  std::sort(files.begin(), files.end());
  auto looks_like = [](const std::filesystem::path& f) -> std::optional<ResultsKind> {
    const std::string name = f.filename().string();
    if (EndsWith(name, kComparisonSuffix)) {
      std::error_code ec;
      const std::string s = f.string();
      if (std::filesystem::exists(s.substr(0, s.size() - std::string(kComparisonSuffix).size()),
                                  ec))
        return ResultsKind::kPruneCurve;
      return std::nullopt;
    }
    if (name == "cache.json") return ResultsKind::kCacheSim;
    if (f.extension() == ".csv" && FirstLine(f) == kReplayHeader) return ResultsKind::kReplay;
    return std::nullopt;
  };
  std::vector<std::filesystem::path> read;
  bool found[3] = {false, false, false};
  for (const std::filesystem::path& f : files) {
    const std::optional<ResultsKind> kind = looks_like(f);
    if (!kind || found[static_cast<int>(*kind)]) continue;
    try {
      LoadResultsFile(f, into);
      found[static_cast<int>(*kind)] = true;
      read.push_back(f);
    } catch (const std::exception& e) {
      errors.push_back(e.what());
    }
  }
  return read;
}

}  // namespace moe::studio
