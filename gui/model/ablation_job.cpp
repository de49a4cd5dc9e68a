#include "gui/model/ablation_job.h"

#include <chrono>
#include <string>

#include "analysis/ablation/ablation_pass.h"
#include "analysis/ablation/ablation_policies.h"
#include "analysis/corpus/trace_corpus.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "core/tokenizer.h"
#include "gui/model/studio_loader.h"

namespace moe::studio {
namespace {

// Trace document index of each document of the ablation's corpus (CorpusFromTrace keeps the
// trace's order, filtered by domain).
std::vector<int64_t> TraceDocuments(const std::string& trace, const std::string& domain) {
  const TraceReader reader(trace);
  std::vector<int64_t> out;
  const std::span<const int16_t> domains = reader.doc_domains();
  for (size_t d = 0; d < domains.size(); ++d)
    if (domain.empty() || reader.domains()[static_cast<size_t>(domains[d])] == domain)
      out.push_back(static_cast<int64_t>(d));
  return out;
}

void CopyDiff(const AblationDiff& diff, const Tokenizer* tok, const std::vector<int64_t>& docs,
              AblationPolicyResult& p) {
  p.predictions = diff.predictions;
  p.changed_predictions = diff.changed_predictions;
  for (const PredictionChange& c : diff.changes) {
    AblationChangeRow row;
    row.document =
        c.document < static_cast<int64_t>(docs.size()) ? docs[static_cast<size_t>(c.document)] : -1;
    row.source_id = c.source_id;
    row.position = c.position;
    row.token_id = c.token_id;
    row.target_id = c.target;
    row.before_id = c.base_top1;
    row.after_id = c.policy_top1;
    row.token = TokenDisplayText(tok, c.token_id);
    row.target = TokenDisplayText(tok, c.target);
    row.before = TokenDisplayText(tok, c.base_top1);
    row.after = TokenDisplayText(tok, c.policy_top1);
    row.delta_nll = c.delta_nll();
    p.changes.push_back(std::move(row));
  }
  const RoutingDiff& r = diff.routing;
  p.layers = r.layers();
  p.experts = r.experts();
  p.routed_tokens = r.tokens();
  p.moved = r.moved();
  p.changed = r.changed();
  p.first_changed = r.first_changed();
}

}  // namespace

std::vector<AblationPolicy> AblationPolicies(const AblationRequest& r, const ModelConfig& c) {
  std::vector<AblationPolicy> out = {NoAblation(c)};
  switch (r.target) {
    case AblationRequest::Target::kExperts: {
      if (r.experts.empty()) Fail("ablation", "select the experts to disable first");
      std::vector<ExpertRef> experts;
      std::string name = "L";  // L<layer>E<e>+<e>...-<mode>, built with += (GCC 12 -Wrestrict)
      name += std::to_string(r.layer);
      name += 'E';
      for (size_t i = 0; i < r.experts.size(); ++i) {
        if (i > 0) name += '+';
        name += std::to_string(r.experts[i]);
        experts.push_back({r.layer, r.experts[i]});
      }
      name += '-';
      name += DisableModeName(r.mode);
      out.push_back(ExpertSet(c, name, experts, r.mode));
      break;
    }
    case AblationRequest::Target::kTopR:
      if (r.r < 1) Fail("ablation", "r must be at least 1");
      out.push_back(TopRSweep(c, r.r).back());  // the sweep's r = 0 is the baseline again
      break;
    case AblationRequest::Target::kTopK:
      out.push_back(KSweep(c, false, {r.k}).front());
      break;
  }
  return out;
}

AblationOutcome RunAblationRequest(const AblationRequest& r, const std::atomic<bool>* stop,
                                   const std::function<void(double)>& progress) {
  if (r.trace.empty()) Fail("ablation", "open a trace first");
  const auto start = std::chrono::steady_clock::now();
  const std::shared_ptr<const LoadedModel> loaded = JobModel(r.model_dir, "ablation");
  const LoadedModel& model = *loaded;
  const std::vector<AblationPolicy> policies = AblationPolicies(r, model.config());

  // The trace's documents, run in memory by the ablation pass: nothing is written.
  CorpusOptions corpus_options;
  if (!r.domain.empty()) corpus_options.only_domains = {r.domain};
  const Corpus corpus = CorpusFromTrace(r.trace, model.config().vocab_size, corpus_options);
  if (corpus.documents.empty()) Fail(r.trace, "has no documents");
  const ScoredTokens tokens = ScoredTokens::Of(corpus);
  AblationPassOptions o;
  const int64_t context = model.config().context_length();
  o.windows = {context, context};
  o.bootstrap = r.bootstrap;
  o.token_values = false;
  o.diff = true;
  o.max_changes = kMaxChangeRows;
  o.stop = stop;
  if (progress)
    o.on_progress = [&](int64_t done, int64_t total) {
      progress(total > 0 ? static_cast<double>(done) / total : 1.0);
    };
  const AblationPassResult s = RunAblationPass(*model.model, corpus, tokens, policies, o);
  if (s.interrupted) throw Cancelled();

  const std::vector<int64_t> docs = TraceDocuments(r.trace, r.domain);
  AblationOutcome out;
  out.domains = corpus.domains;
  out.ci_level = o.ci_level;
  out.documents = static_cast<int64_t>(corpus.documents.size());
  out.tokens = tokens.count();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const AblationResult& a : s.results) {
    AblationPolicyResult p;
    p.name = a.name;
    p.kind = a.kind;
    for (const AblationDomainResult& d : a.domains) {
      p.tokens.push_back(d.tokens);
      p.base_nll.push_back(d.base_nll);
      p.policy_nll.push_back(d.policy_nll);
      p.delta_nll.push_back(d.delta_nll.value);
      p.delta_low.push_back(d.delta_nll.ci_low);
      p.delta_high.push_back(d.delta_nll.ci_high);
      p.kl.push_back(d.kl.value);
      p.agreement.push_back(d.agreement.value);
    }
    for (const AblationDiff& diff : s.diffs)
      if (diff.policy == a.name) CopyDiff(diff, model.tokenizer.get(), docs, p);
    out.policies.push_back(std::move(p));
  }
  if (progress) progress(1.0);
  return out;
}

AblationJob::~AblationJob() {
  stop_ = true;
  Join();
}

void AblationJob::Join() {
  if (thread_.joinable()) thread_.join();
}

void AblationJob::Start(const AblationRequest& request) {
  stop_ = true;
  Join();
  stop_ = false;
  per_mille_ = 0;
  {
    std::lock_guard lock(mutex_);
    error_.clear();
    cancelled_ = false;
  }
  running_ = true;
  thread_ = std::thread([this, request] {
    try {
      auto outcome = std::make_shared<const AblationOutcome>(RunAblationRequest(
          request, &stop_, [this](double f) { per_mille_ = static_cast<int>(f * 1000); }));
      std::lock_guard lock(mutex_);
      outcome_ = std::move(outcome);
    } catch (const Cancelled&) {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      error_ = e.what();
    }
    running_ = false;
  });
}

void AblationJob::Cancel() {
  stop_ = true;
}

void AblationJob::Wait() {
  Join();
}

AblationStatus AblationJob::Status() const {
  AblationStatus s;
  s.running = running_;
  s.progress = per_mille_ / 1000.0;
  std::lock_guard lock(mutex_);
  s.error = error_;
  s.cancelled = cancelled_;
  s.outcome = outcome_;
  return s;
}

}  // namespace moe::studio
