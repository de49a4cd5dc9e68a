#include "analysis/prune/expert_importance.h"

#include <cmath>
#include <limits>

#include "analysis/ablation/ablation_estimates.h"
#include "analysis/prune/importance_observer.h"
#include "analysis/run/window_runner.h"
#include "analysis/stats/resampling.h"
#include "core/error.h"

namespace moe {

namespace {

constexpr const char* kScoreNames[kImportanceScores] = {"frequency", "mean_gate", "reap",
                                                        "max_activation", "output_change"};

// Runs every window of the corpus with the observer attached; returns the tokens of each document.
std::vector<double> RunCorpus(const MoeModel& model, const Corpus& corpus,
                              const ImportanceOptions& o, ImportanceObserver& observer) {
  const ModelConfig& c = model.config();
  const WindowRule rule = o.windows.Resolved(c.context_length());
  const std::vector<TraceWindow> windows = PlanWindows(corpus, 0, rule);
  const std::vector<size_t> order = LongestFirst(windows);
  std::vector<double> doc_tokens(corpus.documents.size(), 0.0);
  int64_t total = 0, done = 0;
  for (const TraceWindow& w : windows) total += w.end - w.record_begin;
  HookGuard guard = model.hooks().Add(&observer);
  const int32_t pad = c.has_pad_token ? c.pad_token_id : 0;
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(o.batch_size)) {
    if (o.stop && o.stop->load()) Fail("importance", "stopped before the corpus was run");
    const size_t last = std::min(order.size(), first + static_cast<size_t>(o.batch_size));
    const std::span<const size_t> members(order.data() + first, last - first);
    std::vector<int32_t> record_from;
    for (size_t m : members) {
      const TraceWindow& w = windows[m];
      record_from.push_back(static_cast<int32_t>(w.record_begin - w.begin));
      doc_tokens[static_cast<size_t>(w.doc)] += static_cast<double>(w.end - w.record_begin);
      done += w.end - w.record_begin;
    }
    observer.SetRecordFrom(std::move(record_from));
    model.Forward(MakeWindowBatch(windows, members, corpus, pad));
    if (o.on_progress)
      o.on_progress(static_cast<int64_t>(last), static_cast<int64_t>(order.size()), done, total);
  }
  return doc_tokens;
}

// Ratio of sums over documents, sum(num) / sum(den), for each (layer, expert), with its
// bootstrap interval.
void EstimateRatio(const std::vector<double>& num, const std::vector<double>& den_per_expert,
                   const std::vector<double>& den_per_doc, const ImportanceSums& s,
                   const std::vector<uint8_t>& boot, const ImportanceOptions& o,
                   std::vector<ScoreValue>& out) {
  const int64_t D = s.documents;
  const int B = o.bootstrap;
  const size_t cells = static_cast<size_t>(s.layers) * s.experts;
  out.assign(cells, {});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> reps(static_cast<size_t>(B));
  for (size_t cell = 0; cell < cells; ++cell) {
    auto den_of = [&](int64_t d) {
      return den_per_doc.empty() ? den_per_expert[static_cast<size_t>(d) * cells + cell]
                                 : den_per_doc[static_cast<size_t>(d)];
    };
    double n = 0, m = 0;
    for (int64_t d = 0; d < D; ++d) n += num[static_cast<size_t>(d) * cells + cell], m += den_of(d);
    ScoreValue& v = out[cell];
    v.value = m > 0 ? n / m : 0.0;
    v.ci_low = v.ci_high = nan;
    if (B == 0) continue;
    for (int b = 0; b < B; ++b) {
      double bn = 0, bm = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double w = boot[static_cast<size_t>(b) * D + d];
        if (w == 0) continue;
        bn += w * num[static_cast<size_t>(d) * cells + cell], bm += w * den_of(d);
      }
      reps[static_cast<size_t>(b)] = bm > 0 ? bn / bm : nan;
    }
    std::tie(v.ci_low, v.ci_high) = PercentileInterval(reps, o.ci_level);
  }
}

}  // namespace

const char* ImportanceScoreName(ImportanceScore score) {
  return kScoreNames[static_cast<int>(score)];
}

ImportanceScore ParseImportanceScore(const std::string& name, const std::string& where) {
  for (int i = 0; i < kImportanceScores; ++i)
    if (name == kScoreNames[i]) return static_cast<ImportanceScore>(i);
  Fail(where, "unknown score " + Quoted(Clipped(name)) +
                  "; expected frequency, mean_gate, reap, max_activation or output_change");
}

ExpertImportance MeasureExpertImportance(const MoeModel& model, const Corpus& corpus,
                                         const ImportanceOptions& o) {
  const ModelConfig& c = model.config();
  if (!c.is_moe) Fail("model", "has no routed layer to score");
  if (o.batch_size < 1) Fail("--batch-size", "must be at least 1");
  if (o.bootstrap < 0) Fail("--bootstrap", "must be at least 0");
  if (!(o.ci_level > 0 && o.ci_level < 1)) Fail("--ci-level", "must lie in (0, 1)");
  if (corpus.documents.empty()) Fail("corpus", "has no documents");
  const int64_t D = static_cast<int64_t>(corpus.documents.size());
  ImportanceObserver observer(model, D, o.output_change);
  const std::vector<double> doc_tokens = RunCorpus(model, corpus, o, observer);
  const ImportanceSums& s = observer.sums();

  ExpertImportance r;
  r.layers = c.num_hidden_layers;
  r.experts = c.num_experts;
  r.top_k = c.num_selects;
  for (int l = 0; l < r.layers; ++l) r.moe_layer.push_back(c.IsMoeLayer(l) ? 1 : 0);
  r.documents = D;
  for (double t : doc_tokens) r.tokens += static_cast<int64_t>(t);
  r.has_output_change = o.output_change;
  r.bootstrap = o.bootstrap;
  r.ci_level = o.ci_level;
  const std::vector<uint8_t> boot = BootstrapWeights(o.bootstrap, D, o.seed);
  r.scores.resize(kImportanceScores);
  auto score = [&](ImportanceScore id) -> std::vector<ScoreValue>& {
    return r.scores[static_cast<int>(id)];
  };
  EstimateRatio(s.routed, {}, doc_tokens, s, boot, o, score(ImportanceScore::kFrequency));
  EstimateRatio(s.gate, {}, doc_tokens, s, boot, o, score(ImportanceScore::kMeanGate));
  EstimateRatio(s.reap, s.routed, {}, s, boot, o, score(ImportanceScore::kReap));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (o.output_change)
    EstimateRatio(s.change, {}, doc_tokens, s, boot, o, score(ImportanceScore::kOutputChange));
  else  // not measured: NaN, which ranking refuses (prune_plan.h)
    score(ImportanceScore::kOutputChange).assign(s.max_activation.size(), {nan, nan, nan});
  for (double m : s.max_activation) score(ImportanceScore::kMaxActivation).push_back({m, nan, nan});
  r.routed.assign(s.max_activation.size(), 0);
  for (int64_t d = 0; d < D; ++d)
    for (size_t cell = 0; cell < r.routed.size(); ++cell)
      r.routed[cell] +=
          static_cast<int64_t>(s.routed[static_cast<size_t>(d) * r.routed.size() + cell]);
  return r;
}

}  // namespace moe
