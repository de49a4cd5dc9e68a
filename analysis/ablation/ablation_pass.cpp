#include "analysis/ablation/ablation_pass.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <span>

#include "analysis/ablation/ablation_estimates.h"
#include "analysis/ablation/ablation_observers.h"
#include "analysis/run/next_token.h"
#include "analysis/run/routing_recorder.h"
#include "analysis/run/window_runner.h"
#include "core/error.h"

namespace moe {
namespace {

using ablation::ExpertCounter;
using ablation::ResidualCapture;

// What one policy has gathered so far, over documents doc_base.. and their scored tokens
// token_base.. (the whole corpus, or one document of a distributed run).
struct PolicyRun {
  const AblationPolicy* policy = nullptr;
  int64_t doc_base = 0, token_base = 0;
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
          double* s = pr.doc_sums.data() + (row.doc - pr.doc_base) * kAblationSums;
          s[kSumTokens] += 1;
          s[kSumBaseNll] += nll_base;
          s[kSumPolicyNll] += nll;
          s[kSumDeltaNll] += delta;
          s[kSumKl] += kl;
          s[kSumAgree] += agree;
          if (o.token_values) {
            const size_t at = static_cast<size_t>(token - pr.token_base);
            pr.delta[at] = static_cast<float>(delta);
            pr.kl[at] = static_cast<float>(kl);
            pr.agree[at] = agree ? 1 : 0;
          }
        }
      });
}

// The baseline forward pass of one batch: residuals for the group, kept logits, top-1 and
// NLL of every scored row (base_nll holds the scored tokens token_base..).
void RunBaseline(const MoeModel& model, const ScoredTokens& tokens, ResidualCapture& capture,
                 ExpertCounter& experts, const AblationPassOptions& o, BatchBaseline& base,
                 std::vector<float>& base_nll, int64_t token_base) {
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
  ForEachScoredBlock(
      model, hidden, base.rows, nullptr, base.logits,
      [&](int64_t first, int64_t n, const LogitRowStats* stats) {
        for (int64_t j = 0; j < n; ++j) {
          const size_t r = static_cast<size_t>(first + j);
          const ScoredRow& row = base.rows[r];
          base.nll[r] = stats[j].nll;
          base.top[r] = stats[j].argmax;
          base_nll[static_cast<size_t>(tokens.doc_offset[static_cast<size_t>(row.doc)] +
                                       row.position - token_base)] =
              static_cast<float>(stats[j].nll);
        }
      });
}

// A group of policies run together: their runs, the baseline's expert counts, and the layers
// whose entering residual the baseline keeps (each policy's first changed layer).
struct GroupRun {
  std::vector<PolicyRun> runs;
  ExpertCounter base_experts{0};
  std::vector<int> layers;
};

// Runs over documents first_doc.. (D of them) and their scored tokens first_token.. (T).
GroupRun StartGroup(std::span<const AblationPolicy> policies, const ModelConfig& c,
                    int64_t first_doc, int64_t D, int64_t first_token, int64_t T,
                    const AblationPassOptions& o) {
  GroupRun group;
  group.base_experts = ExpertCounter(c.num_hidden_layers);
  for (const AblationPolicy& p : policies) {
    PolicyRun r;
    r.policy = &p;
    r.doc_base = first_doc;
    r.token_base = first_token;
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
    if (std::find(group.layers.begin(), group.layers.end(), p.first_layer) == group.layers.end())
      group.layers.push_back(p.first_layer);
    group.runs.push_back(std::move(r));
  }
  return group;
}

// One batch of windows: the baseline once, then every policy of the group from its first changed
// layer. `after_policy` gets the rows scored after each policy. Returns false for a batch
// without scored rows.
bool RunGroupBatch(const MoeModel& model, const Corpus& corpus, const ScoredTokens& tokens,
                   std::span<const TraceWindow> windows, std::span<const size_t> members,
                   const AblationPassOptions& o, GroupRun& group, BaselineLogits& kept_logits,
                   std::vector<float>& base_nll, int64_t token_base,
                   const std::function<void(int64_t rows)>& after_policy) {
  const ModelConfig& c = model.config();
  const int L = c.num_hidden_layers, E = c.num_experts;
  const int32_t pad = c.has_pad_token ? c.pad_token_id : 0;
  // E columns of routing hold any policy's selections.
  BatchBaseline base{MakeWindowBatch(windows, members, corpus, pad), {}, &kept_logits, {}, {},
                     RoutingRecorder(L, E, E, false, c.moe_layer)};
  base.rows = ScoredRowsOf(base.batch, windows, members, corpus);
  if (base.rows.empty()) return false;
  ResidualCapture capture(group.layers);
  RunBaseline(model, tokens, capture, group.base_experts, o, base, base_nll, token_base);
  RoutingRecorder policy_routing(L, E, E, false, c.moe_layer);
  for (PolicyRun& pr : group.runs) {
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
    after_policy(static_cast<int64_t>(base.rows.size()));
  }
  return true;
}

// A finished policy's result: estimates from its per-document sums, token values, experts.
AblationResult FinishPolicy(PolicyRun& pr, const ExpertCounter& base_experts,
                            const ScoredTokens& tokens, const std::vector<uint8_t>& weights,
                            const AblationPassOptions& o) {
  AblationResult r =
      EstimatePolicy(*pr.policy, pr.doc_sums, tokens.doc_domain,
                     static_cast<int>(tokens.domains.size()), weights, o.bootstrap, o.ci_level);
  r.delta_nll = std::move(pr.delta);
  r.kl = std::move(pr.kl);
  r.agree = std::move(pr.agree);
  r.experts_per_layer =
      pr.experts.PerLayer(base_experts, o.reuse_residual ? pr.policy->first_layer : 0);
  return r;
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
  const std::vector<TraceWindow> windows = PlanWindows(corpus, 0, o.windows);
  const std::vector<size_t> order = LongestFirst(windows);
  const size_t batches = (order.size() + o.batch_size - 1) / o.batch_size;
  const std::vector<uint8_t> weights = BootstrapWeights(o.bootstrap, D, o.seed);

  AblationPassResult out;
  out.base_nll.assign(static_cast<size_t>(T), std::nanf(""));
  const int64_t total = static_cast<int64_t>(policies.size()) * T;
  BaselineLogits kept_logits;  // of the current batch
  int64_t evaluated = 0;
  const auto after_policy = [&](int64_t rows) {
    evaluated += rows;
    if (o.on_progress) o.on_progress(evaluated, total);
  };
  for (size_t g0 = 0; g0 < policies.size() && !out.interrupted;
       g0 += static_cast<size_t>(o.group_size)) {
    const size_t g1 = std::min(policies.size(), g0 + static_cast<size_t>(o.group_size));
    GroupRun group = StartGroup(std::span<const AblationPolicy>(policies).subspan(g0, g1 - g0), c,
                                0, D, 0, T, o);
    for (size_t bi = 0; bi < batches; ++bi) {
      if (o.stop != nullptr && o.stop->load()) {
        out.interrupted = true;
        break;
      }
      const auto members = std::span<const size_t>(order).subspan(
          bi * o.batch_size, std::min<size_t>(o.batch_size, order.size() - bi * o.batch_size));
      RunGroupBatch(model, corpus, tokens, windows, members, o, group, kept_logits, out.base_nll, 0,
                    after_policy);
    }
    if (out.interrupted) break;
    for (PolicyRun& pr : group.runs) {
      AblationResult r = FinishPolicy(pr, group.base_experts, tokens, weights, o);
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

AblationWindows AblationWindows::Plan(const Corpus& corpus, const WindowRule& rule) {
  AblationWindows w;
  w.windows = PlanWindows(corpus, 0, rule);
  w.of_document.resize(corpus.documents.size());
  for (size_t i : LongestFirst(w.windows))
    w.of_document[static_cast<size_t>(w.windows[i].doc)].push_back(i);
  return w;
}

AblationDocumentPart RunAblationDocument(const MoeModel& model, const Corpus& corpus,
                                         const ScoredTokens& tokens, const AblationWindows& windows,
                                         std::span<const AblationPolicy> group_policies,
                                         int64_t doc, const AblationPassOptions& o) {
  const std::vector<AblationPolicy> checked(group_policies.begin(), group_policies.end());
  CheckOptions(model, checked, o);
  if (o.diff) Fail("ablate", "token-level differences are not gathered document by document");
  if (doc < 0 || doc >= static_cast<int64_t>(windows.of_document.size()))
    Fail("ablate", "internal error: document " + std::to_string(doc) + " is not in the corpus");
  const ModelConfig& c = model.config();
  const int64_t first = tokens.doc_offset[static_cast<size_t>(doc)];
  const int64_t n = tokens.doc_offset[static_cast<size_t>(doc) + 1] - first;
  const std::vector<size_t>& order = windows.of_document[static_cast<size_t>(doc)];
  GroupRun group = StartGroup(group_policies, c, doc, 1, first, n, o);
  // The baseline's logits of a batch, in one buffer for every document this thread runs:
  // allocating and faulting in R × V floats per document would cost about as much as a policy.
  thread_local BaselineLogits kept_logits;
  AblationDocumentPart part;
  part.doc = doc;
  part.base_nll.assign(static_cast<size_t>(n), std::nanf(""));
  for (size_t b = 0; b < order.size(); b += static_cast<size_t>(o.batch_size)) {
    if (o.stop != nullptr && o.stop->load()) {
      part.complete = false;
      return part;
    }
    const auto members = std::span<const size_t>(order).subspan(
        b, std::min<size_t>(static_cast<size_t>(o.batch_size), order.size() - b));
    RunGroupBatch(model, corpus, tokens, windows.windows, members, o, group, kept_logits,
                  part.base_nll, first, [&](int64_t rows) {
                    if (o.on_progress) o.on_progress(rows, 0);
                  });
  }
  part.base_experts = group.base_experts.Counts();
  for (const PolicyRun& pr : group.runs) {
    part.sums.insert(part.sums.end(), pr.doc_sums.begin(), pr.doc_sums.end());
    const std::vector<double> experts = pr.experts.Counts();
    part.experts.insert(part.experts.end(), experts.begin(), experts.end());
    part.delta.insert(part.delta.end(), pr.delta.begin(), pr.delta.end());
    part.kl.insert(part.kl.end(), pr.kl.begin(), pr.kl.end());
    part.agree.insert(part.agree.end(), pr.agree.begin(), pr.agree.end());
  }
  return part;
}

struct AblationGroupAssembly::State {
  GroupRun group;
  std::vector<float> base_nll;
};

AblationGroupAssembly::AblationGroupAssembly(const MoeModel& model, const ScoredTokens& tokens,
                                             std::span<const AblationPolicy> group_policies,
                                             const AblationPassOptions& options)
    : tokens_(tokens), options_(options), state_(std::make_unique<State>()) {
  const int64_t D = static_cast<int64_t>(tokens.doc_domain.size()), T = tokens.count();
  state_->group = StartGroup(group_policies, model.config(), 0, D, 0, T, options);
  state_->base_nll.assign(static_cast<size_t>(T), std::nanf(""));
  layers_ = model.config().num_hidden_layers;
  added_.assign(static_cast<size_t>(D), false);
}

AblationGroupAssembly::~AblationGroupAssembly() = default;

void AblationGroupAssembly::Add(const AblationDocumentPart& part) {
  const size_t P = state_->group.runs.size(), S = kAblationSums,
               C = 2 * static_cast<size_t>(layers_);
  if (part.doc < 0 || part.doc >= static_cast<int64_t>(added_.size()) ||
      added_[static_cast<size_t>(part.doc)])
    Fail("ablate", "internal error: document " + std::to_string(part.doc) +
                       " arrived twice or is not in the corpus");
  const int64_t first = tokens_.doc_offset[static_cast<size_t>(part.doc)];
  const size_t n =
      static_cast<size_t>(tokens_.doc_offset[static_cast<size_t>(part.doc) + 1] - first);
  const size_t values = options_.token_values ? P * n : 0;
  if (part.base_nll.size() != n || part.base_experts.size() != C || part.sums.size() != P * S ||
      part.experts.size() != P * C || part.delta.size() != values || part.kl.size() != values ||
      part.agree.size() != values)
    Fail("ablate", "internal error: the results of document " + std::to_string(part.doc) +
                       " do not match this sweep");
  added_[static_cast<size_t>(part.doc)] = true;
  ++documents_;
  std::copy(part.base_nll.begin(), part.base_nll.end(), state_->base_nll.begin() + first);
  state_->group.base_experts.AddCounts(part.base_experts.data());
  for (size_t i = 0; i < P; ++i) {
    PolicyRun& pr = state_->group.runs[i];
    std::copy_n(part.sums.begin() + static_cast<ptrdiff_t>(i * S), S,
                pr.doc_sums.begin() + part.doc * static_cast<int64_t>(S));
    pr.experts.AddCounts(part.experts.data() + i * C);
    if (values == 0) continue;
    const auto at = static_cast<ptrdiff_t>(i * n);
    std::copy_n(part.delta.begin() + at, n, pr.delta.begin() + first);
    std::copy_n(part.kl.begin() + at, n, pr.kl.begin() + first);
    std::copy_n(part.agree.begin() + at, n, pr.agree.begin() + first);
  }
}

std::vector<AblationResult> AblationGroupAssembly::Finish(std::vector<float>& base_nll) {
  if (documents_ != static_cast<int64_t>(added_.size()))
    Fail("ablate", "internal error: the group is missing documents");
  const std::vector<uint8_t> weights =
      BootstrapWeights(options_.bootstrap, static_cast<int64_t>(added_.size()), options_.seed);
  std::vector<AblationResult> out;
  for (PolicyRun& pr : state_->group.runs)
    out.push_back(FinishPolicy(pr, state_->group.base_experts, tokens_, weights, options_));
  base_nll = state_->base_nll;
  return out;
}

}  // namespace moe
