#include "analysis/prune/prune_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "analysis/stats/resampling.h"
#include "core/error.h"

namespace moe {

namespace {

std::string RatioText(double ratio) {
  std::string s = std::to_string(ratio);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

// Each cell's key: the score (lower = removed first), or a hash for the random criterion.
std::vector<double> Keys(const ExpertImportance& imp, const PruneRequest& r) {
  std::vector<double> key(static_cast<size_t>(imp.layers) * imp.experts);
  for (int l = 0; l < imp.layers; ++l)
    for (int e = 0; e < imp.experts; ++e) {
      const size_t at = static_cast<size_t>(l) * imp.experts + e;
      if (!imp.moe_layer[static_cast<size_t>(l)]) continue;
      if (!r.criterion.score) {
        key[at] = HashUnit(MixHash3(r.seed, static_cast<uint64_t>(l), static_cast<uint64_t>(e)));
        continue;
      }
      key[at] = imp.At(*r.criterion.score, l, e).value;
      if (!std::isfinite(key[at]))
        Fail("--score", std::string(ImportanceScoreName(*r.criterion.score)) +
                            " was not measured in the importance file (layer " + std::to_string(l) +
                            ", expert " + std::to_string(e) + ")");
    }
  return key;
}

// The experts a policy disables in layer l, as a sorted set.
std::set<int32_t> Disabled(const AblationPolicy& p, size_t l) {
  return l < p.policy.layers.size() ? std::set<int32_t>(p.policy.layers[l].disabled.begin(),
                                                        p.policy.layers[l].disabled.end())
                                    : std::set<int32_t>{};
}

size_t LayerCount(const AblationPolicy& a, const AblationPolicy& b) {
  return std::max(a.policy.layers.size(), b.policy.layers.size());
}

bool SameCountsPerLayer(const AblationPolicy& a, const AblationPolicy& b) {
  for (size_t l = 0; l < LayerCount(a, b); ++l)
    if (Disabled(a, l).size() != Disabled(b, l).size()) return false;
  return true;
}

bool SameDisabledSets(const AblationPolicy& a, const AblationPolicy& b) {
  for (size_t l = 0; l < LayerCount(a, b); ++l)
    if (Disabled(a, l) != Disabled(b, l)) return false;
  return true;
}

}  // namespace

PruneCriterion ParsePruneCriterion(const std::string& name, const std::string& where) {
  if (name == "random") return {};
  return {ParseImportanceScore(name, where)};
}

int64_t PrunePlan::RemovedCount() const {
  int64_t n = 0;
  for (const auto& r : removed) n += static_cast<int64_t>(r.size());
  return n;
}

bool PrunePlan::Uniform() const {
  std::optional<size_t> count;
  for (size_t l = 0; l < removed.size(); ++l) {
    if (!moe_layer[l]) continue;
    if (count && *count != removed[l].size()) return false;
    count = removed[l].size();
  }
  return true;
}

std::vector<ExpertRef> PrunePlan::RemovedRefs() const {
  std::vector<ExpertRef> refs;
  for (int l = 0; l < layers; ++l)
    for (int32_t e : removed[static_cast<size_t>(l)]) refs.push_back({l, e});
  return refs;
}

PrunePlan PlanPruning(const ExpertImportance& imp, const PruneRequest& r) {
  if (!(r.ratio > 0 && r.ratio < 1))
    Fail("--ratio", "must lie in (0, 1), got " + RatioText(r.ratio));
  const int E = imp.experts, k = imp.top_k;
  const int moe_layers =
      static_cast<int>(std::count(imp.moe_layer.begin(), imp.moe_layer.end(), 1));
  const std::vector<double> key = Keys(imp, r);
  // Cells in removal order: lowest key first, ties to the lower (layer, expert).
  std::vector<size_t> order;
  for (int l = 0; l < imp.layers; ++l)
    if (imp.moe_layer[static_cast<size_t>(l)])
      for (int e = 0; e < E; ++e) order.push_back(static_cast<size_t>(l) * E + e);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });

  PrunePlan plan;
  plan.layers = imp.layers;
  plan.experts = E;
  plan.top_k = k;
  plan.moe_layer = imp.moe_layer;
  plan.removed.assign(static_cast<size_t>(imp.layers), {});
  const int64_t per_layer = std::llround(r.ratio * E);
  const int64_t total = r.global ? std::llround(r.ratio * E * moe_layers) : per_layer * moe_layers;
  if (per_layer < 1 && !r.global)
    Fail("--ratio", RatioText(r.ratio) + " of " + std::to_string(E) + " experts removes none");
  if (total < 1) Fail("--ratio", RatioText(r.ratio) + " removes no expert");
  if (!r.global && E - per_layer < k)
    Fail("--ratio", RatioText(r.ratio) + " of " + std::to_string(E) + " experts leaves " +
                        std::to_string(E - per_layer) + ", fewer than k = " + std::to_string(k));
  int64_t taken = 0;
  for (size_t cell : order) {
    if (taken == total) break;
    auto& layer = plan.removed[cell / static_cast<size_t>(E)];
    const int64_t limit = r.global ? E - k : per_layer;
    if (static_cast<int64_t>(layer.size()) >= limit) continue;
    layer.push_back(static_cast<int32_t>(cell % static_cast<size_t>(E)));
    ++taken;
  }
  if (taken < total)
    Fail("--ratio", RatioText(r.ratio) +
                        " would leave some layer fewer than k = " + std::to_string(k) + " experts");
  plan.kept.assign(static_cast<size_t>(imp.layers), {});
  for (int l = 0; l < imp.layers; ++l) {
    auto& removed = plan.removed[static_cast<size_t>(l)];
    std::sort(removed.begin(), removed.end());
    for (int e = 0; e < E; ++e)
      if (!std::binary_search(removed.begin(), removed.end(), e))
        plan.kept[static_cast<size_t>(l)].push_back(e);
  }
  return plan;
}

std::vector<AblationPolicy> PruneCurvePolicies(const ModelConfig& config,
                                               const ExpertImportance& imp,
                                               const std::vector<PruneCriterion>& criteria,
                                               const std::vector<double>& ratios, bool global,
                                               int controls, uint64_t seed) {
  if (imp.layers != config.num_hidden_layers || imp.experts != config.num_experts)
    Fail("--importance", "was measured on a model of " + std::to_string(imp.layers) + " layers x " +
                             std::to_string(imp.experts) + " experts, not this one");
  if (criteria.empty()) Fail("--scores", "names no score");
  if (ratios.empty()) Fail("--ratios", "names no ratio");
  if (controls < 0) Fail("--random-controls", "must be at least 0");
  std::vector<AblationPolicy> policies{NoAblation(config)};
  for (double ratio : ratios) {
    const std::string percent = RatioText(ratio * 100) + "%";
    // The controls drawn so far at this ratio. A set with the same per-layer counts shares them
    // (the draw depends only on the seed and the counts, so drawing again would rerun the same
    // random sets), unless one of them is the set itself.
    std::vector<std::vector<AblationPolicy>> drawn;
    for (const PruneCriterion& criterion : criteria) {
      const PrunePlan plan = PlanPruning(imp, {criterion, ratio, global, seed});
      AblationPolicy set = ExpertSet(config, criterion.Name() + "-" + percent, plan.RemovedRefs(),
                                     DisableMode::kReroute);
      set.kind = "prune";
      if (controls == 0) {
        policies.push_back(set);
        continue;
      }
      auto shared = std::find_if(drawn.begin(), drawn.end(), [&](const auto& group) {
        return std::all_of(group.begin(), group.end(), [&](const AblationPolicy& c) {
          return SameCountsPerLayer(c, set) && !SameDisabledSets(c, set);
        });
      });
      if (shared != drawn.end()) {
        set.control_of = shared->front().control_of;
        policies.push_back(set);
        continue;
      }
      set.control_of = set.name;
      policies.push_back(set);
      drawn.push_back(RandomControls(config, set, controls, seed));
      policies.insert(policies.end(), drawn.back().begin(), drawn.back().end());
    }
  }
  CheckUniqueNames(policies);
  return policies;
}

}  // namespace moe
