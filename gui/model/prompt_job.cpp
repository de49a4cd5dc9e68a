#include "gui/model/prompt_job.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"

#include <chrono>

#include "analysis/run/prompt_probe.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "gui/model/studio_loader.h"

namespace moe::studio {
namespace {

PromptRun Reshape(const PromptProbe& p, const Tokenizer& tok, int experts) {
  PromptRun r;
  r.layers = p.layers;
  r.kmax = p.kmax;
  r.experts = experts;
  r.token_id = p.ids;
  r.text = DocumentText(&tok, p.ids);
  r.ids.assign(p.topk_ids.begin(), p.topk_ids.end());  // int16 as in traces: E < 32768
  r.weights = p.topk_weights;
  for (const NextTokenPrediction& n : p.next)
    r.next.push_back({n.id, TokenDisplayText(&tok, n.id), n.probability});
  return r;
}

}  // namespace

RoutingPolicy PromptPolicy(const PromptRequest& request, const ModelConfig& config) {
  std::vector<ExpertRef> disabled;
  for (const auto& [layer, expert] : request.disabled) disabled.push_back({layer, expert});
  RoutingPolicy policy = RoutingPolicy::Disabling(disabled, request.mode, config.num_hidden_layers);
  for (const PromptForcedRoute& f : request.forced) {
    if (f.layer < 0 || f.layer >= config.num_hidden_layers)
      Fail("prompt", "forced route: layer " + std::to_string(f.layer) + " is out of range");
    ForcedRoute route;
    route.layer = f.layer;
    route.position = f.position;
    route.experts.assign(f.experts.begin(), f.experts.end());
    policy.forced.push_back(std::move(route));
  }
  // Validate (inside Probe) names an expert out of range, a layer with every expert off or an
  // empty forced route.
  return policy;
}

PromptOutcome RunPromptRequest(const LoadedModel& model, const PromptRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer& tok = model.RequireTokenizer();
  const int E = model.config().num_experts;
  PromptOutcome out;
  out.request = request;
  out.base = Reshape(Probe(model, request.text, nullptr, request.top_n), tok, E);
  if (!request.disabled.empty() || !request.forced.empty()) {
    const RoutingPolicy policy = PromptPolicy(request, model.config());
    out.ablated = std::make_shared<PromptRun>(
        Reshape(Probe(model, request.text, &policy, request.top_n), tok, E));
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

PromptJob::PromptJob() : thread_([this] { Loop(); }) {}

PromptJob::~PromptJob() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
    pending_.reset();
  }
  wake_.notify_all();
  thread_.join();
}

void PromptJob::Start(const PromptRequest& request) {
  {
    std::lock_guard lock(mutex_);
    pending_ = request;
  }
  wake_.notify_all();
}

void PromptJob::Wait() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return !running_ && !pending_; });
}

PromptStatus PromptJob::Status() const {
  std::lock_guard lock(mutex_);
  PromptStatus s;
  s.running = running_ || pending_.has_value();
  s.error = error_;
  s.outcome = outcome_;
  return s;
}

void PromptJob::Loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return quit_ || pending_.has_value(); });
    if (quit_) return;
    const PromptRequest request = std::move(*pending_);
    pending_.reset();
    running_ = true;
    std::shared_ptr<LoadedModel> model = model_;
    lock.unlock();
    std::shared_ptr<const PromptOutcome> outcome;
    std::string error;
    try {
      model = JobModel(request.model_dir, "prompt", std::move(model));
      outcome = std::make_shared<const PromptOutcome>(RunPromptRequest(*model, request));
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    model_ = std::move(model);
    running_ = false;
    error_ = error;
    if (outcome) outcome_ = std::move(outcome);
    if (!pending_) idle_.notify_all();
  }
}

}  // namespace moe::studio
