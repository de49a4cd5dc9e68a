#include "analysis/ablation/ablation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "analysis/ablation/ablation_file.h"
#include "analysis/corpus/corpus.h"
#include "analysis/common/progress_bar.h"
#include "analysis/stats/resampling.h"
#include "analysis/run/routing_recorder.h"
#include "analysis/corpus/trace_corpus.h"
#include "analysis/run/trace_windows.h"
#include "analysis/run/window_runner.h"
#include "core/error.h"
#include "core/heads.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kLmBlock = 256;  // rows of [rows, V] logits computed at once

// Keeps a copy of the residual stream entering each requested layer during one forward pass:
// the embeddings for layer 0, the output of layer l - 1 for layer l (LlamaMoeModel::ForwardFrom
// takes exactly that).
class ResidualCapture : public RoutingObserver {
 public:
  explicit ResidualCapture(std::vector<int> layers) : layers_(std::move(layers)) {}
  std::vector<HookRequest> Requests() const override {
    std::vector<HookRequest> r;
    for (int l : layers_)
      r.push_back(l == 0 ? HookRequest{HookSite::kEmbeddings, -1}
                         : HookRequest{HookSite::kLayerOutput, l - 1});
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

// log-softmax of one row of logits, in double.
void LogSoftmax(const float* z, int64_t V, std::vector<double>& out) {
  out.resize(static_cast<size_t>(V));
  double top = z[0];
  for (int64_t v = 1; v < V; ++v) top = std::max(top, static_cast<double>(z[v]));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - top);
  const double lse = top + std::log(sum);
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = z[v] - lse;
}

int64_t ArgMax(const double* x, int64_t n) {
  return std::max_element(x, x + n) - x;  // first maximum: the lowest index on ties
}

// Per-document sums of one policy: tokens, base NLL, policy NLL, ΔNLL, KL, agreement.
constexpr int kSums = 6;

struct PolicyRun {
  const AblationPolicy* policy = nullptr;
  std::vector<double> doc_sums;  // [D, kSums]
  std::vector<float> delta, kl;  // [T] when token values are kept
  std::vector<int8_t> agree;
  AblationDiff diff;  // when the run keeps token-level differences
};

struct ScoredRow {
  int64_t batch_row = 0;  // row of the batch (b * S + s)
  int64_t token = 0;      // scored-token index in the corpus
  int32_t target = 0;
  int64_t doc = 0;
};

class Progress {
 public:
  Progress(bool enabled, int64_t total) : enabled_(enabled), total_(total) {}
  ~Progress() { Clear(); }
  void Update(int64_t done, const std::string& what) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total_) return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    const double rate = s > 0 ? (done - first_) / s : 0;
    std::fprintf(stderr, "\r[ablate] %3d%%  %s  ETA %s\x1b[K",
                 total_ > 0 ? static_cast<int>(100.0 * done / total_) : 100, what.c_str(),
                 rate > 0 ? ShortDuration((total_ - done) / rate).c_str() : "?");
    std::fflush(stderr);
    drawn_ = true;
  }
  void Start(int64_t done) { first_ = done; }
  void Clear() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  bool enabled_;
  int64_t total_, first_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

AblationResult Summarize(const PolicyRun& run, const std::vector<int16_t>& doc_domain, int M,
                         const std::vector<uint8_t>& weights, int B, double level) {
  const AblationPolicy& p = *run.policy;
  AblationResult r;
  r.name = p.name;
  r.kind = p.kind;
  r.control_of = p.control_of;
  r.policy_json = p.policy.ToJson().dump();
  r.first_layer = p.first_layer;
  r.layer = p.layer;
  r.expert = p.expert;
  r.r = p.r;
  r.k = p.k;
  const size_t D = doc_domain.size();
  // Point estimates: ratios of sums over the documents of each domain (row M: all).
  std::vector<double> total(static_cast<size_t>(M + 1) * kSums, 0.0);
  for (size_t d = 0; d < D; ++d)
    for (int s = 0; s < kSums; ++s) {
      total[static_cast<size_t>(doc_domain[d]) * kSums + s] += run.doc_sums[d * kSums + s];
      total[static_cast<size_t>(M) * kSums + s] += run.doc_sums[d * kSums + s];
    }
  std::vector<std::vector<double>> replicate(static_cast<size_t>(3 * (M + 1)),
                                             std::vector<double>(static_cast<size_t>(B), kNan));
  std::vector<double> sums(static_cast<size_t>(M + 1) * kSums);
  for (int b = 0; b < B; ++b) {
    std::fill(sums.begin(), sums.end(), 0.0);
    for (size_t d = 0; d < D; ++d) {
      const double w = weights[static_cast<size_t>(b) * D + d];
      if (w == 0) continue;
      for (int s = 0; s < kSums; ++s) {
        sums[static_cast<size_t>(doc_domain[d]) * kSums + s] += w * run.doc_sums[d * kSums + s];
        sums[static_cast<size_t>(M) * kSums + s] += w * run.doc_sums[d * kSums + s];
      }
    }
    for (int m = 0; m <= M; ++m) {
      const double* t = sums.data() + static_cast<size_t>(m) * kSums;
      if (t[0] == 0) continue;
      for (int i = 0; i < 3; ++i) replicate[static_cast<size_t>(3 * m + i)][b] = t[3 + i] / t[0];
    }
  }
  for (int m = 0; m <= M; ++m) {
    const double* t = total.data() + static_cast<size_t>(m) * kSums;
    AblationDomainResult d;
    d.tokens = static_cast<int64_t>(t[0]);
    const double n = t[0] > 0 ? t[0] : kNan;
    d.base_nll = t[1] / n;
    d.policy_nll = t[2] / n;
    Estimate* e[3] = {&d.delta_nll, &d.kl, &d.agreement};
    for (int i = 0; i < 3; ++i) {
      e[i]->value = t[3 + i] / n;
      e[i]->ci_low = e[i]->ci_high = kNan;
      if (B > 0)
        std::tie(e[i]->ci_low, e[i]->ci_high) =
            PercentileInterval(replicate[static_cast<size_t>(3 * m + i)], level);
    }
    r.domains.push_back(d);
  }
  r.delta_nll = run.delta;
  r.kl = run.kl;
  r.agree = run.agree;
  return r;
}

std::string Fixed(double v, int digits = 4) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

}  // namespace

AblationSummary RunAblation(const LoadedModel& m, const std::vector<AblationPolicy>& policies,
                            const AblationOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const LlamaMoeConfig& c = m.config();
  if (!c.is_moe)
    Fail(m.dir.string(), "is a dense LLaMA without routers; there is nothing to ablate");
  if (m.model->weights().lm_head.empty())
    Fail(m.dir.string(), "has no LM head; ablations measure next-token loss");
  if (policies.empty()) Fail("ablate", "no policy to run (choose a sweep)");
  if (o.batch_size < 1) Fail("--batch-size", "must be at least 1");
  if (o.group_size < 1) Fail("--group-size", "must be at least 1");
  if (o.bootstrap < 0) Fail("--bootstrap", "must be >= 0");
  if (o.output.extension() == ".csv")
    Fail(o.output.string(), "the results file must not end in .csv");
  CheckUniqueNames(policies);
  for (const AblationPolicy& p : policies) p.policy.Validate(c);

  TraceRunSettings run = o.run;
  if (run.windows.max_window == 0) run.windows.max_window = c.context_length();
  if (run.windows.stride == 0) run.windows.stride = run.windows.max_window;
  run.windows.Validate(c.context_length());
  run.record_logits = false;
  if (!o.trace.empty() && !run.corpus_files.empty())
    Fail("ablate", "give corpus files or a trace, not both");
  if (o.trace.empty() && run.corpus_files.empty())
    Fail("ablate", "nothing to run over: give corpus files (--corpus) or a trace (--trace)");
  if (!o.trace.empty()) run.corpus_files = {o.trace.string()};
  const Corpus corpus = o.trace.empty()
                            ? ReadCorpus(std::vector<std::filesystem::path>(
                                             run.corpus_files.begin(), run.corpus_files.end()),
                                         m.tokenizer.get(), c.vocab_size, CorpusOptionsOf(run))
                            : CorpusFromTrace(o.trace, c.vocab_size, CorpusOptionsOf(run));
  if (corpus.documents.empty()) Fail("corpus", "has no documents");
  const int M = static_cast<int>(corpus.domains.size());
  const int64_t D = static_cast<int64_t>(corpus.documents.size());

  // The scored tokens: every token with a next token in its document.
  const TraceHeader trace = MakeTraceHeader(m, RoutingPolicy{}, corpus, run);
  AblationHeader h;
  h.model_path = trace.model_path;
  h.model_config = trace.model_config;
  h.checkpoint_sha256 = trace.checkpoint_sha256;
  h.corpus = trace.corpus;
  h.corpus_sha256 = trace.corpus_sha256;
  h.windowing = trace.windowing;
  h.num_layers = c.num_hidden_layers;
  h.num_experts = c.num_experts;
  h.top_k = c.num_selects;
  h.bootstrap = o.bootstrap;
  h.seed = o.seed;
  h.ci_level = o.ci_level;
  h.domains = corpus.domains;
  h.doc_offset.push_back(0);
  for (int64_t d = 0; d < D; ++d) {
    const CorpusDocument& doc = corpus.documents[static_cast<size_t>(d)];
    h.doc_domain.push_back(doc.domain);
    h.doc_source.push_back(doc.source_id);
    for (size_t i = 0; i + 1 < doc.ids.size(); ++i) {
      h.token_doc.push_back(static_cast<int32_t>(d));
      h.token_position.push_back(static_cast<int32_t>(i));
      h.token_id.push_back(doc.ids[i]);
      h.token_target.push_back(doc.ids[i + 1]);
    }
    h.doc_offset.push_back(static_cast<int64_t>(h.token_doc.size()));
  }
  const int64_t T = h.doc_offset.back();
  if (T == 0) Fail("corpus", "has no token with a next token to predict");

  AblationSummary summary;
  summary.output = o.output.string();
  summary.csv = std::filesystem::path(o.output).replace_extension(".csv").string();
  summary.policies = static_cast<int>(policies.size());
  summary.documents = D;
  summary.tokens = T;
  std::vector<std::string> done;
  if (o.resume && std::filesystem::exists(o.output)) {
    AblationFile::CheckResumable(o.output, h);
    done = AblationFile::CompletedPolicies(o.output);
  } else {
    AblationFile::Create(o.output, h);
  }
  std::vector<const AblationPolicy*> pending;
  for (const AblationPolicy& p : policies)
    if (std::find(done.begin(), done.end(), p.name) == done.end()) pending.push_back(&p);
  summary.skipped = summary.policies - static_cast<int>(pending.size());

  // Windows, batched by length as the trace runner does.
  std::vector<TraceWindow> windows;
  for (int64_t d = 0; d < D; ++d) {
    const auto split = SplitDocument(
        d, static_cast<int64_t>(corpus.documents[static_cast<size_t>(d)].ids.size()), run.windows);
    windows.insert(windows.end(), split.begin(), split.end());
  }
  std::vector<size_t> order(windows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return windows[a].length() > windows[b].length(); });
  const size_t batches = (order.size() + o.batch_size - 1) / o.batch_size;

  // Poisson bootstrap weights per (replicate, document), shared by every policy.
  std::vector<uint8_t> weights(static_cast<size_t>(o.bootstrap) * D);
  for (int b = 0; b < o.bootstrap; ++b)
    for (int64_t d = 0; d < D; ++d)
      weights[static_cast<size_t>(b) * D + d] = static_cast<uint8_t>(PoissonWeight(o.seed, d, b));

  const int64_t V = c.vocab_size, H = c.hidden_size;
  const int L = c.num_hidden_layers, E = c.num_experts;
  const int32_t pad = c.has_pad_token ? c.pad_token_id : 0;
  std::vector<float> base_nll(static_cast<size_t>(T), std::nanf(""));
  Progress progress(o.progress, static_cast<int64_t>(pending.size()) * T);
  int64_t evaluated = 0;
  std::vector<double> base_lp, lp;

  for (size_t g0 = 0; g0 < pending.size() && !summary.interrupted;
       g0 += static_cast<size_t>(o.group_size)) {
    const size_t g1 = std::min(pending.size(), g0 + static_cast<size_t>(o.group_size));
    std::vector<PolicyRun> group;
    std::vector<int> layers;
    for (size_t i = g0; i < g1; ++i) {
      PolicyRun r;
      r.policy = pending[i];
      r.doc_sums.assign(static_cast<size_t>(D) * kSums, 0.0);
      if (o.token_values) {
        r.delta.assign(static_cast<size_t>(T), std::nanf(""));
        r.kl.assign(static_cast<size_t>(T), std::nanf(""));
        r.agree.assign(static_cast<size_t>(T), 0);
      }
      if (o.diff) {
        r.diff.policy = pending[i]->name;
        r.diff.routing = RoutingDiff(L, E);
      }
      group.push_back(std::move(r));
      if (std::find(layers.begin(), layers.end(), pending[i]->first_layer) == layers.end())
        layers.push_back(pending[i]->first_layer);
    }
    const int64_t group_start = evaluated;
    progress.Start(evaluated);
    for (size_t bi = 0; bi < batches; ++bi) {
      if (o.stop != nullptr && o.stop->load()) {
        summary.interrupted = true;
        break;
      }
      const auto members = std::span<const size_t>(order).subspan(
          bi * o.batch_size, std::min<size_t>(o.batch_size, order.size() - bi * o.batch_size));
      const Batch batch = MakeWindowBatch(windows, members, corpus, pad);
      std::vector<ScoredRow> rows;
      for (size_t b = 0; b < members.size(); ++b) {
        const TraceWindow& w = windows[members[b]];
        const auto& ids = corpus.documents[static_cast<size_t>(w.doc)].ids;
        for (int64_t i = w.record_begin; i < w.end; ++i) {
          if (i + 1 >= static_cast<int64_t>(ids.size())) continue;
          rows.push_back({static_cast<int64_t>(b) * batch.seq_len + (i - w.begin),
                          h.doc_offset[static_cast<size_t>(w.doc)] + i,
                          ids[static_cast<size_t>(i + 1)], w.doc});
        }
      }
      if (rows.empty()) continue;
      const int64_t R = static_cast<int64_t>(rows.size());
      ResidualCapture capture(layers);
      // Routing of both runs for the diff; E columns hold any policy's selections.
      RoutingRecorder base_routing(L, E, E, false), policy_routing(L, E, E, false);
      std::vector<float> base_hidden;
      {
        const HookGuard guard = m.model->hooks().Add(&capture);
        HookGuard routing_guard;
        if (o.diff) routing_guard = m.model->hooks().Add(&base_routing);
        base_hidden = m.model->Forward(batch);
      }
      // The recorders' row of a scored row: rows are grouped by batch row, padding dropped.
      auto routing_row = [&](const RoutingRecorder& rec, const ScoredRow& row) {
        const int64_t b = row.batch_row / batch.seq_len, s = row.batch_row % batch.seq_len;
        return rec.SequenceBegin(static_cast<int>(b)) + s;
      };
      std::vector<int16_t> policy_ids(static_cast<size_t>(L) * E);
      // Baseline log-probabilities of the scored rows [R, V] (memory: batch tokens x V x 8 bytes).
      std::vector<double> base(static_cast<size_t>(R * V));
      std::vector<int64_t> base_top(static_cast<size_t>(R));
      std::vector<float> gathered;
      auto logits_of = [&](const std::vector<float>& hidden, int64_t first, int64_t n) {
        gathered.resize(static_cast<size_t>(n * H));
        for (int64_t j = 0; j < n; ++j)
          std::copy_n(hidden.begin() + rows[static_cast<size_t>(first + j)].batch_row * H, H,
                      gathered.begin() + j * H);
        return LmLogits(*m.model, gathered.data(), n);
      };
      for (int64_t first = 0; first < R; first += kLmBlock) {
        const int64_t n = std::min(kLmBlock, R - first);
        const std::vector<float> z = logits_of(base_hidden, first, n);
        for (int64_t j = 0; j < n; ++j) {
          LogSoftmax(z.data() + j * V, V, base_lp);
          std::copy(base_lp.begin(), base_lp.end(), base.begin() + (first + j) * V);
          base_top[static_cast<size_t>(first + j)] = ArgMax(base_lp.data(), V);
          const ScoredRow& row = rows[static_cast<size_t>(first + j)];
          base_nll[static_cast<size_t>(row.token)] =
              static_cast<float>(-base_lp[static_cast<size_t>(row.target)]);
        }
      }
      for (PolicyRun& pr : group) {
        const AblationPolicy& p = *pr.policy;
        HookGuard routing_guard;
        if (o.diff) {
          policy_routing.Reset();
          routing_guard = m.model->hooks().Add(&policy_routing);
        }
        const std::vector<float> hidden =
            o.reuse_residual ? m.model->ForwardFrom(batch, p.first_layer,
                                                    capture.Residual(p.first_layer), &p.policy)
                             : m.model->Forward(batch, nullptr, &p.policy);
        routing_guard.Release();
        // Layers below the first one the policy changes ran only in the baseline (and equally).
        const int unchanged_layers = o.reuse_residual ? p.first_layer : 0;
        for (int64_t first = 0; first < R; first += kLmBlock) {
          const int64_t n = std::min(kLmBlock, R - first);
          const std::vector<float> z = logits_of(hidden, first, n);
          for (int64_t j = 0; j < n; ++j) {
            LogSoftmax(z.data() + j * V, V, lp);
            const ScoredRow& row = rows[static_cast<size_t>(first + j)];
            const double* b = base.data() + (first + j) * V;
            const double nll_base = -b[row.target];
            const double nll = -lp[static_cast<size_t>(row.target)];
            double kl = 0;
            for (int64_t v = 0; v < V; ++v)
              kl += std::exp(b[v]) * (b[v] - lp[static_cast<size_t>(v)]);
            kl = std::max(kl, 0.0);
            const int64_t top = ArgMax(lp.data(), V);
            const bool agree = top == base_top[static_cast<size_t>(first + j)];
            const double delta = nll - nll_base;
            if (o.diff) {
              AblationDiff& diff = pr.diff;
              ++diff.predictions;
              if (!agree) {
                ++diff.changed_predictions;
                const size_t t = static_cast<size_t>(row.token), d = static_cast<size_t>(row.doc);
                diff.changes.push_back(
                    {row.token, row.doc, h.doc_source[d], h.doc_domain[d], h.token_position[t],
                     h.token_id[t], row.target,
                     static_cast<int32_t>(base_top[static_cast<size_t>(first + j)]),
                     static_cast<int32_t>(top), nll_base, nll});
                // Bounded memory: only the largest max_changes can be kept in the end.
                if (diff.changes.size() >= 2 * std::max<size_t>(o.max_changes, 1))
                  KeepLargestChanges(diff.changes, o.max_changes);
              }
              const size_t row_size = static_cast<size_t>(L) * E;
              const int16_t* base_ids =
                  base_routing.topk_ids().data() + routing_row(base_routing, row) * row_size;
              const size_t kept = static_cast<size_t>(unchanged_layers) * E;
              std::copy(base_ids, base_ids + kept, policy_ids.begin());
              if (kept < row_size) {  // a policy changing no layer (first_layer L) records none
                const int16_t* changed_ids =
                    policy_routing.topk_ids().data() + routing_row(policy_routing, row) * row_size;
                std::copy(changed_ids + kept, changed_ids + row_size,
                          policy_ids.begin() + static_cast<ptrdiff_t>(kept));
              }
              diff.routing.AddToken(base_ids, E, policy_ids.data(), E);
            }
            double* s = pr.doc_sums.data() + row.doc * kSums;
            s[0] += 1;
            s[1] += nll_base;
            s[2] += nll;
            s[3] += delta;
            s[4] += kl;
            s[5] += agree;
            if (o.token_values) {
              pr.delta[static_cast<size_t>(row.token)] = static_cast<float>(delta);
              pr.kl[static_cast<size_t>(row.token)] = static_cast<float>(kl);
              pr.agree[static_cast<size_t>(row.token)] = agree ? 1 : 0;
            }
          }
        }
        evaluated += R;
        if (o.on_progress) o.on_progress(evaluated, static_cast<int64_t>(pending.size()) * T);
        progress.Update(evaluated, "policies " + std::to_string(g0 + summary.skipped) + "-" +
                                       std::to_string(g1 + summary.skipped) + "/" +
                                       std::to_string(summary.policies) + "  batch " +
                                       std::to_string(bi + 1) + "/" + std::to_string(batches));
      }
    }
    if (summary.interrupted) {
      evaluated = group_start;
      break;
    }
    for (PolicyRun& pr : group) {
      AblationFile::WritePolicy(
          o.output, Summarize(pr, h.doc_domain, M, weights, o.bootstrap, o.ci_level), base_nll);
      ++summary.run;
      if (o.diff) {
        KeepLargestChanges(pr.diff.changes, o.max_changes);
        summary.diffs.push_back(std::move(pr.diff));
      }
    }
  }
  progress.Clear();

  // Every finished policy in the file, in sweep order (others after them).
  std::vector<AblationResult> results = AblationFile::Read(o.output, &summary.domains);
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < policies.size(); ++i) rank[policies[i].name] = i;
  std::stable_sort(results.begin(), results.end(), [&](const auto& a, const auto& b) {
    const size_t ra = rank.count(a.name) ? rank[a.name] : policies.size();
    const size_t rb = rank.count(b.name) ? rank[b.name] : policies.size();
    return ra < rb;
  });
  WriteAblationCsv(summary.csv, summary.domains, results);
  summary.results = std::move(results);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

void WriteAblationCsv(const std::filesystem::path& csv, const std::vector<std::string>& domains,
                      const std::vector<AblationResult>& results) {
  std::ofstream out(csv);
  if (!out) Fail(csv.string(), "cannot be written");
  auto number = [](double v) {
    if (std::isnan(v)) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.10g", v);
    return std::string(buf);
  };
  auto text = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  out << "policy,kind,layer,expert,r,k,control_of,first_layer,domain,metric,value,ci_low,ci_high,"
         "n\n";
  for (const AblationResult& r : results)
    for (size_t m = 0; m < r.domains.size(); ++m) {
      const AblationDomainResult& d = r.domains[m];
      const std::string prefix = text(r.name) + "," + r.kind + "," + std::to_string(r.layer) + "," +
                                 std::to_string(r.expert) + "," + std::to_string(r.r) + "," +
                                 std::to_string(r.k) + "," + text(r.control_of) + "," +
                                 std::to_string(r.first_layer) + "," +
                                 text(m < domains.size() ? domains[m] : "all") + ",";
      const std::string n = std::to_string(d.tokens);
      auto row = [&](const char* metric, const Estimate& e) {
        out << prefix << metric << ',' << number(e.value) << ',' << number(e.ci_low) << ','
            << number(e.ci_high) << ',' << n << '\n';
      };
      row("delta_nll", d.delta_nll);
      row("kl", d.kl);
      row("top1_agreement", d.agreement);
      row("base_nll", {d.base_nll, kNan, kNan});
      row("policy_nll", {d.policy_nll, kNan, kNan});
    }
  out.close();
  if (!out) Fail(csv.string(), "could not be written completely");
}

std::string FormatAblationTable(const AblationSummary& s) {
  size_t width = 6;
  for (const AblationResult& r : s.results) width = std::max(width, r.name.size());
  auto pad = [&](std::string t, size_t w) {
    t.resize(std::max(t.size(), w), ' ');
    return t;
  };
  std::string out = pad("policy", width) + "  from  " + pad("ΔNLL (all) [95% CI]", 30) +
                    pad("KL", 10) + "top-1 agree\n";
  for (const AblationResult& r : s.results) {
    if (r.domains.empty()) continue;
    const AblationDomainResult& a = r.domains.back();
    std::string ci, from = "L";
    if (!std::isnan(a.delta_nll.ci_low)) {
      ci += " [";
      ci += Fixed(a.delta_nll.ci_low);
      ci += ", ";
      ci += Fixed(a.delta_nll.ci_high);
      ci += "]";
    }
    from += std::to_string(r.first_layer);
    out += pad(r.name, width);
    out += "  ";
    out += pad(from, 4);
    out += "  ";
    out += pad(Fixed(a.delta_nll.value) + ci, 28);
    out += "  ";
    out += pad(Fixed(a.kl.value), 10);
    out += Fixed(a.agreement.value, 3);
    out += "\n";
  }
  return out;
}

std::string FormatAblationSummary(const AblationSummary& s) {
  char text[256];
  std::snprintf(text, sizeof(text),
                "%s %d of %d policies (%d already done) over %lld documents, %s predictions "
                "each, in %.1fs -> %s, %s",
                s.interrupted ? "interrupted after" : "ran", s.run, s.policies, s.skipped,
                static_cast<long long>(s.documents),
                ShortCount(static_cast<double>(s.tokens)).c_str(), s.seconds, s.output.c_str(),
                s.csv.c_str());
  std::string out = text;
  if (s.interrupted) out += "\nresume with the same command and --resume";
  return out;
}

}  // namespace moe
