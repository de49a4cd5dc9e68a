#include "analysis/stats/vocab_specialization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "analysis/stats/resampling.h"
#include "core/error.h"

namespace moe {
namespace {

// Draws executed sets from one layer's pooled distribution.
class SetSampler {
 public:
  explicit SetSampler(const ExecutedSetCounts& counts) {
    std::vector<std::pair<ExecutedSet, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());  // a fixed order, so draws do not depend on hashing
    int64_t total = 0;
    for (const auto& [set, n] : sorted) {
      total += n;
      sets_.push_back(set);
      cumulative_.push_back(total);
    }
  }
  bool empty() const { return sets_.empty(); }
  const ExecutedSet& Draw(uint64_t hash) const {
    const int64_t at =
        static_cast<int64_t>(HashUnit(hash) * static_cast<double>(cumulative_.back()));
    return sets_[std::upper_bound(cumulative_.begin(), cumulative_.end(), at) -
                 cumulative_.begin()];
  }

 private:
  std::vector<ExecutedSet> sets_;
  std::vector<int64_t> cumulative_;
};

// Percentile interval of the mean of `values` over `replicates` resamples with replacement.
std::pair<double, double> BootstrapMean(const std::vector<double>& values, int replicates,
                                        double level, uint64_t seed) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (replicates <= 0 || values.empty()) return {nan, nan};
  const uint64_t n = values.size();
  std::vector<double> means(static_cast<size_t>(replicates));
  for (int b = 0; b < replicates; ++b) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i)
      sum += values[static_cast<size_t>(HashUnit(MixHash3(seed, b, i)) * static_cast<double>(n))];
    means[static_cast<size_t>(b)] = sum / static_cast<double>(n);
  }
  return PercentileInterval(means, level);
}

}  // namespace

VocabSpecialization ComputeVocabSpecialization(const std::vector<uint32_t>& table,
                                               const std::vector<int64_t>& occurrences,
                                               const std::vector<ExecutedSetCounts>& sets, int L,
                                               int E, int min_count, int top_n, uint64_t seed,
                                               int bootstrap, double ci_level) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t V = static_cast<int64_t>(occurrences.size());
  if (table.size() != static_cast<size_t>(L) * V * E)
    Fail("vocabulary statistics", "the token table does not match the vocabulary");
  VocabSpecialization r;
  r.layers = L;
  r.experts = E;
  r.top_n = top_n;
  const size_t le = static_cast<size_t>(L) * E;
  r.layer_mean.assign(L, nan);
  r.layer_shuffled.assign(L, nan);
  r.layer_ci_low.assign(L, nan);
  r.layer_ci_high.assign(L, nan);
  r.expert_ci_low.assign(le, nan);
  r.expert_ci_high.assign(le, nan);
  r.expert_mean.assign(le, 0.0);
  r.expert_shuffled.assign(le, 0.0);
  r.expert_tokens.assign(le, 0);
  r.top.assign(le * top_n, TopToken{-1, 0, 0, 0});
  for (int64_t x = 0; x < V; ++x) r.kept_tokens += occurrences[x] >= min_count;
  std::vector<int64_t> drawn(E);
  for (int l = 0; l < L; ++l) {
    const SetSampler sampler(sets.size() > static_cast<size_t>(l) ? sets[l] : ExecutedSetCounts{});
    double sum = 0, sum_shuffled = 0;
    std::vector<std::vector<double>> cell_values(static_cast<size_t>(E));  // v_l(x) by argmax e
    std::vector<double> layer_values;
    for (int64_t x = 0; x < V; ++x) {
      const int64_t n = occurrences[x];
      if (n < min_count || n == 0) continue;
      const uint32_t* row = table.data() + (static_cast<size_t>(l) * V + x) * E;
      int best = 0;
      for (int e = 1; e < E; ++e)
        if (row[e] > row[best]) best = e;
      const double v = static_cast<double>(row[best]) / static_cast<double>(n);
      double shuffled = nan;
      if (!sampler.empty()) {
        const int64_t draws = std::min(n, kMaxDraws);
        std::fill(drawn.begin(), drawn.end(), 0);
        for (int64_t i = 0; i < draws; ++i) {
          const ExecutedSet& set = sampler.Draw(
              MixHash3(seed ^ 0x766f636162ull, (static_cast<uint64_t>(l) << 32) ^ x, i));
          for (int e = 0; e < E; ++e) drawn[e] += set.Contains(e);
        }
        shuffled = static_cast<double>(*std::max_element(drawn.begin(), drawn.end())) /
                   static_cast<double>(draws);
      }
      sum += v;
      sum_shuffled += shuffled;
      const size_t cell = static_cast<size_t>(l) * E + best;
      r.expert_mean[cell] += v;
      cell_values[static_cast<size_t>(best)].push_back(v);
      layer_values.push_back(v);
      r.expert_shuffled[cell] += shuffled;
      ++r.expert_tokens[cell];
    }
    if (r.kept_tokens > 0) {
      r.layer_mean[l] = sum / static_cast<double>(r.kept_tokens);
      r.layer_shuffled[l] = sum_shuffled / static_cast<double>(r.kept_tokens);
    }
    const uint64_t ci_seed = MixHash3(seed, 0x76636900ull, static_cast<uint64_t>(l));
    std::tie(r.layer_ci_low[l], r.layer_ci_high[l]) =
        BootstrapMean(layer_values, bootstrap, ci_level, ci_seed);
    for (int e = 0; e < E; ++e) {
      const size_t cell = static_cast<size_t>(l) * E + e;
      std::tie(r.expert_ci_low[cell], r.expert_ci_high[cell]) =
          BootstrapMean(cell_values[static_cast<size_t>(e)], bootstrap, ci_level, ci_seed + 1 + e);
      const double k = static_cast<double>(r.expert_tokens[cell]);
      r.expert_mean[cell] = k > 0 ? r.expert_mean[cell] / k : nan;
      r.expert_shuffled[cell] = k > 0 ? r.expert_shuffled[cell] / k : nan;
      // Top tokens of (l, e): highest VS_l(e, x), then highest count, then lowest id.
      std::vector<TopToken> candidates;
      for (int64_t x = 0; x < V; ++x) {
        const int64_t n = occurrences[x];
        const uint32_t c = table[(static_cast<size_t>(l) * V + x) * E + e];
        if (n < min_count || n == 0 || c == 0) continue;
        candidates.push_back({static_cast<int32_t>(x), c, n, static_cast<double>(c) / n});
      }
      const size_t keep = std::min(candidates.size(), static_cast<size_t>(top_n));
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(),
                        [](const TopToken& a, const TopToken& b) {
                          if (a.share != b.share) return a.share > b.share;
                          if (a.count != b.count) return a.count > b.count;
                          return a.token < b.token;
                        });
      std::copy_n(candidates.begin(), keep, r.top.begin() + cell * top_n);
    }
  }
  return r;
}

}  // namespace moe
