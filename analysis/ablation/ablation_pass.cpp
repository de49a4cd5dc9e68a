#include "analysis/ablation/ablation_pass.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <span>

#include "analysis/ablation/ablation_estimates.h"
#include "analysis/run/next_token.h"
#include "analysis/run/routing_recorder.h"
#include "analysis/run/window_runner.h"
#include "core/error.h"

namespace moe {
namespace {

// Keeps a copy of the residual stream entering each requested layer during one forward pass:
// the embeddings for layer 0, the output of layer l - 1 for layer l (MoeModel::ForwardFrom
// takes exactly that).
class ResidualCapture : public RoutingObserver {
 public:
  explicit ResidualCapture(std::vector<int> layers) : layers_(std::move(layers)) {}
  std::vector<HookRequest> Requests() const override {
    std::vector<HookRequest> r;
    for (int l : layers_)
      r.push_back(l == 0 ? HookRequest{HookSite::kEmbeddings, -1}
                         : HookRequest{HookSite::kHiddenOut, l - 1});
    return r;
  }
  void OnEvent(const HookEvent& ev) override {
    const int layer = ev.site == HookSite::kEmbeddings ? 0 : ev.layer + 1;
    residual_[layer].assign(ev.values, ev.values + ev.rows * ev.cols);
  }
  const std::vector<float>& Residual(int layer) const {
    const auto it = residual_.find(layer);
    if (it == residual_.end()) Fail("ablate", "internal error: no residual kept for that layer");
    return it->second;
  }

 private:
  std::vector<int> layers_;
  std::map<int, std::vector<float>> residual_;
};

// Experts executed per real token at each layer (the x axis of the quality/compute curve): sums of
// the non-negative ids of kTopkIds rows, and the rows counted.
class ExpertCounter : public RoutingObserver {
 public:
  explicit ExpertCounter(int layers) : experts_(layers, 0.0), tokens_(layers, 0.0) {}
  std::vector<HookRequest> Requests() const override { return {{HookSite::kTopkIds, -1}}; }
  void OnEvent(const HookEvent& ev) override {
    for (int64_t t = 0; t < ev.rows; ++t) {
      if (ev.tokens->real != nullptr && !ev.tokens->real[t]) continue;
      const int32_t* row = ev.ids + t * ev.cols;
      experts_[ev.layer] +=
          static_cast<double>(std::count_if(row, row + ev.cols, [](int32_t e) { return e >= 0; }));
      tokens_[ev.layer] += 1;
    }
  }
  // Per layer: experts per token; layers below `from` are taken from `below` (they ran only in
  // the baseline, and equally); NaN where no token was routed (dense layers).
  std::vector<double> PerLayer(const ExpertCounter& below, int from) const {
    std::vector<double> out(experts_.size());
    for (size_t l = 0; l < out.size(); ++l) {
      const ExpertCounter& c = static_cast<int>(l) < from ? below : *this;
      out[l] = c.tokens_[l] > 0 ? c.experts_[l] / c.tokens_[l] : std::nan("");
    }
    return out;
  }

 private:
  std::vector<double> experts_, tokens_;
};

// What one policy has gathered so far.
struct PolicyRun {
  const AblationPolicy* policy = nullptr;
  std::vector<double> doc_sums;  // [D, kAblationSums]
  std::vector<float> delta, kl;  // [T] when token values are kept
  std::vector<int8_t> agree;
  AblationDiff diff;  // when the pass keeps token-level differences
  ExpertCounter experts{0};
};

// One batch of windows, its scored rows and the baseline's view of them.
struct BatchBaseline {
  Batch batch;
  std::vector<ScoredRow> rows;
  // [R, V] logits and log-sum-exp, kept for every policy's KL (memory: R × V × 4 bytes, one
  // buffer for all batches of the pass).
  BaselineLogits* logits = nullptr;
  std::vector<double> nll;   // [R] baseline NLL
  std::vector<int32_t> top;  // [R] baseline top-1
  RoutingRecorder routing;   // baseline routing, for the diff

  int64_t RoutingRow(const RoutingRecorder& rec, const ScoredRow& row) const {
    return rec.SequenceBegin(static_cast<int>(row.batch_row / batch.seq_len)) +
           row.batch_row % batch.seq_len;
  }
};

void CheckOptions(const MoeModel& model, const std::vector<AblationPolicy>& policies,
                  const AblationPassOptions& o) {
  const ModelConfig& c = model.config();
  if (!c.is_moe) Fail("ablate", "the model is a dense LLaMA without routers; nothing to ablate");
  if (model.weights().lm_head.empty())
    Fail("ablate", "the model has no LM head; ablations measure next-token loss");
  if (policies.empty()) Fail("ablate", "no policy to run (choose a sweep)");
  if (o.batch_size < 1) Fail("--batch-size", "must be at least 1");
  if (o.group_size < 1) Fail("--group-size", "must be at least 1");
  if (o.bootstrap < 0) Fail("--bootstrap", "must be >= 0");
  o.windows.Validate(c.context_length());
  CheckUniqueNames(policies);
  for (const AblationPolicy& p : policies) p.policy.Validate(c);
}

// The policy's measures of the batch's rows, added to its sums (and token values, diff).
void ScorePolicy(const MoeModel& model, const ScoredTokens& tokens, BatchBaseline& base,
                 const std::vector<float>& hidden, const RoutingRecorder& policy_routing,
                 const AblationPassOptions& o, PolicyRun& pr) {
  const ModelConfig& c = model.config();
  const int L = c.num_hidden_layers, E = c.num_experts;
  const AblationPolicy& p = *pr.policy;
  // Layers below the first one the policy changes ran only in the baseline (and equally).
  const int unchanged_layers = o.reuse_residual ? p.first_layer : 0;
  std::vector<int16_t> policy_ids(static_cast<size_t>(L) * E);
  ForEachScoredBlock(
      model, hidden, base.rows, base.logits, nullptr,
      [&](int64_t first, int64_t n, const LogitRowStats* stats) {
        for (int64_t j = 0; j < n; ++j) {
          const size_t r = static_cast<size_t>(first + j);
          const ScoredRow& row = base.rows[r];
          const int64_t token = tokens.doc_offset[static_cast<size_t>(row.doc)] + row.position;
          const double nll_base = base.nll[r], nll = stats[j].nll, kl = stats[j].kl;
          const int32_t top = stats[j].argmax, base_top = base.top[r];
          const bool agree = top == base_top;
          const double delta = nll - nll_base;
          if (o.diff) {
            AblationDiff& diff = pr.diff;
            ++diff.predictions;
            if (!agree) {
              ++diff.changed_predictions;
              const size_t d = static_cast<size_t>(row.doc);
              diff.changes.push_back({token, row.doc, tokens.doc_source[d], tokens.doc_domain[d],
                                      static_cast<int32_t>(row.position),
                                      tokens.token_id[static_cast<size_t>(token)], row.target,
                                      base_top, top, nll_base, nll});
              // Bounded memory: only the largest max_changes can be kept in the end.
              if (diff.changes.size() >= 2 * std::max<size_t>(o.max_changes, 1))
                KeepLargestChanges(diff.changes, o.max_changes);
            }
            const size_t row_size = static_cast<size_t>(L) * E;
            const int16_t* base_ids =
                base.routing.topk_ids().data() + base.RoutingRow(base.routing, row) * row_size;
            const size_t kept = static_cast<size_t>(unchanged_layers) * E;
            std::copy(base_ids, base_ids + kept, policy_ids.begin());
            if (kept < row_size) {  // a policy changing no layer (first_layer L) records none
              const int16_t* changed_ids = policy_routing.topk_ids().data() +
                                           base.RoutingRow(policy_routing, row) * row_size;
              std::copy(changed_ids + kept, changed_ids + row_size,
                        policy_ids.begin() + static_cast<ptrdiff_t>(kept));
            }
            diff.routing.AddToken(base_ids, E, policy_ids.data(), E);
          }
          double* s = pr.doc_sums.data() + row.doc * kAblationSums;
          s[kSumTokens] += 1;
          s[kSumBaseNll] += nll_base;
          s[kSumPolicyNll] += nll;
          s[kSumDeltaNll] += delta;
          s[kSumKl] += kl;
          s[kSumAgree] += agree;
          if (o.token_values) {
            pr.delta[static_cast<size_t>(token)] = static_cast<float>(delta);
            pr.kl[static_cast<size_t>(token)] = static_cast<float>(kl);
            pr.agree[static_cast<size_t>(token)] = agree ? 1 : 0;
          }
        }
      });
}

// The baseline forward pass of one batch: residuals for the group, kept logits, top-1 and
// NLL of every scored row.
void RunBaseline(const MoeModel& model, const ScoredTokens& tokens, ResidualCapture& capture,
                 ExpertCounter& experts, const AblationPassOptions& o, BatchBaseline& base,
                 std::vector<float>& base_nll) {
  std::vector<float> hidden;
  {
    const HookGuard guard = model.hooks().Add(&capture);
    const HookGuard experts_guard = model.hooks().Add(&experts);
    HookGuard routing_guard;
    if (o.diff) routing_guard = model.hooks().Add(&base.routing);
    hidden = model.Forward(base.batch);
  }
  const int64_t R = static_cast<int64_t>(base.rows.size());
  base.logits->Resize(R, model.config().vocab_size);
  base.nll.resize(static_cast<size_t>(R));
  base.top.resize(static_cast<size_t>(R));
  ForEachScoredBlock(model, hidden, base.rows, nullptr, base.logits,
                     [&](int64_t first, int64_t n, const LogitRowStats* stats) {
                       for (int64_t j = 0; j < n; ++j) {
                         const size_t r = static_cast<size_t>(first + j);
                         const ScoredRow& row = base.rows[r];
                         base.nll[r] = stats[j].nll;
                         base.top[r] = stats[j].argmax;
                         base_nll[static_cast<size_t>(
                             tokens.doc_offset[static_cast<size_t>(row.doc)] + row.position)] =
                             static_cast<float>(stats[j].nll);
                       }
                     });
}

std::vector<PolicyRun> StartGroup(std::span<const AblationPolicy> policies, const ModelConfig& c,
                                  int64_t D, int64_t T, const AblationPassOptions& o) {
  std::vector<PolicyRun> group;
  for (const AblationPolicy& p : policies) {
    PolicyRun r;
    r.policy = &p;
    r.experts = ExpertCounter(c.num_hidden_layers);
    r.doc_sums.assign(static_cast<size_t>(D) * kAblationSums, 0.0);
    if (o.token_values) {
      r.delta.assign(static_cast<size_t>(T), std::nanf(""));
      r.kl.assign(static_cast<size_t>(T), std::nanf(""));
      r.agree.assign(static_cast<size_t>(T), 0);
    }
    if (o.diff) {
      r.diff.policy = p.name;
      r.diff.routing = RoutingDiff(c.num_hidden_layers, c.num_experts);
    }
    group.push_back(std::move(r));
  }
  return group;
}

}  // namespace

ScoredTokens ScoredTokens::Of(const Corpus& corpus) {
  ScoredTokens t;
  t.domains = corpus.domains;
  t.doc_offset.push_back(0);
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    const CorpusDocument& doc = corpus.documents[d];
    t.doc_domain.push_back(doc.domain);
    t.doc_source.push_back(doc.source_id);
    for (size_t i = 0; i + 1 < doc.ids.size(); ++i) {
      t.token_doc.push_back(static_cast<int32_t>(d));
      t.token_position.push_back(static_cast<int32_t>(i));
      t.token_id.push_back(doc.ids[i]);
      t.token_target.push_back(doc.ids[i + 1]);
    }
    t.doc_offset.push_back(static_cast<int64_t>(t.token_doc.size()));
  }
  return t;
}

AblationPassResult RunAblationPass(const MoeModel& model, const Corpus& corpus,
                                   const ScoredTokens& tokens,
                                   const std::vector<AblationPolicy>& policies,
                                   const AblationPassOptions& o) {
  CheckOptions(model, policies, o);
  const ModelConfig& c = model.config();
  const int64_t D = static_cast<int64_t>(corpus.documents.size()), T = tokens.count();
  if (T == 0) Fail("corpus", "has no token with a next token to predict");
  const int L = c.num_hidden_layers, E = c.num_experts;
  const int32_t pad = c.has_pad_token ? c.pad_token_id : 0;
  const std::vector<TraceWindow> windows = PlanWindows(corpus, 0, o.windows);
  const std::vector<size_t> order = LongestFirst(windows);
  const size_t batches = (order.size() + o.batch_size - 1) / o.batch_size;
  const std::vector<uint8_t> weights = BootstrapWeights(o.bootstrap, D, o.seed);
  const int M = static_cast<int>(tokens.domains.size());

  AblationPassResult out;
  out.base_nll.assign(static_cast<size_t>(T), std::nanf(""));
  const int64_t total = static_cast<int64_t>(policies.size()) * T;
  BaselineLogits kept_logits;  // of the current batch
  int64_t evaluated = 0;
  for (size_t g0 = 0; g0 < policies.size() && !out.interrupted;
       g0 += static_cast<size_t>(o.group_size)) {
    const size_t g1 = std::min(policies.size(), g0 + static_cast<size_t>(o.group_size));
    std::vector<PolicyRun> group =
        StartGroup(std::span<const AblationPolicy>(policies).subspan(g0, g1 - g0), c, D, T, o);
    ExpertCounter base_experts(L);
    std::vector<int> layers;
    for (const PolicyRun& r : group)
      if (std::find(layers.begin(), layers.end(), r.policy->first_layer) == layers.end())
        layers.push_back(r.policy->first_layer);
    for (size_t bi = 0; bi < batches; ++bi) {
      if (o.stop != nullptr && o.stop->load()) {
        out.interrupted = true;
        break;
      }
      const auto members = std::span<const size_t>(order).subspan(
          bi * o.batch_size, std::min<size_t>(o.batch_size, order.size() - bi * o.batch_size));
      // E columns of routing hold any policy's selections.
      BatchBaseline base{MakeWindowBatch(windows, members, corpus, pad), {}, &kept_logits, {}, {},
                         RoutingRecorder(L, E, E, false, c.moe_layer)};
      base.rows = ScoredRowsOf(base.batch, windows, members, corpus);
      if (base.rows.empty()) continue;
      ResidualCapture capture(layers);
      RunBaseline(model, tokens, capture, base_experts, o, base, out.base_nll);
      RoutingRecorder policy_routing(L, E, E, false, c.moe_layer);
      for (PolicyRun& pr : group) {
        const AblationPolicy& p = *pr.policy;
        HookGuard routing_guard;
        if (o.diff) routing_guard = model.hooks().Add(&policy_routing);
        const HookGuard experts_guard = model.hooks().Add(&pr.experts);
        const std::vector<float> hidden =
            o.reuse_residual ? model.ForwardFrom(base.batch, p.first_layer,
                                                 capture.Residual(p.first_layer), &p.policy)
                             : model.Forward(base.batch, nullptr, &p.policy);
        routing_guard.Release();
        ScorePolicy(model, tokens, base, hidden, policy_routing, o, pr);
        policy_routing.Reset();
        evaluated += static_cast<int64_t>(base.rows.size());
        if (o.on_progress) o.on_progress(evaluated, total);
      }
    }
    if (out.interrupted) break;
    for (PolicyRun& pr : group) {
      AblationResult r = EstimatePolicy(*pr.policy, pr.doc_sums, tokens.doc_domain, M, weights,
                                        o.bootstrap, o.ci_level);
      r.delta_nll = std::move(pr.delta);
      r.kl = std::move(pr.kl);
      r.agree = std::move(pr.agree);
      r.experts_per_layer =
          pr.experts.PerLayer(base_experts, o.reuse_residual ? pr.policy->first_layer : 0);
      if (o.on_result) o.on_result(r, out.base_nll);
      out.results.push_back(std::move(r));
      if (o.diff) {
        KeepLargestChanges(pr.diff.changes, o.max_changes);
        out.diffs.push_back(std::move(pr.diff));
      }
    }
  }
  return out;
}

}  // namespace moe
