#include "gui/model/ablation_job.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "analysis/ablation.h"
#include "analysis/ablation_policies.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "gui/model/studio_loader.h"

namespace moe::studio {

std::vector<AblationPolicy> AblationPolicies(const AblationRequest& r, const LlamaMoeConfig& c) {
  std::vector<AblationPolicy> out = {NoAblation(c)};
  switch (r.target) {
    case AblationRequest::Target::kExperts: {
      if (r.experts.empty()) Fail("ablation", "select the experts to disable first");
      std::string pairs, name = "L" + std::to_string(r.layer) + "E";
      for (size_t i = 0; i < r.experts.size(); ++i) {
        if (i > 0) {
          pairs += ',';
          name += '+';
        }
        pairs.append(std::to_string(r.layer)).append(":").append(std::to_string(r.experts[i]));
        name += std::to_string(r.experts[i]);
      }
      const DisableMode mode = ParseDisableMode(r.mode, "ablation semantics");
      out.push_back(ExpertSet(c, name + "-" + DisableModeName(mode), pairs, mode));
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
  if (r.model_dir.empty()) Fail("ablation", "no model to run: open one (File > Open model)");
  // The panel's own copy of the model: RunAblation installs hooks on it, which must not meet
  // another user of the app's model.
  const LoadedModel model = LoadModel(r.model_dir);
  const std::vector<AblationPolicy> policies = AblationPolicies(r, model.config());

  static std::atomic<int> serial{0};
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("moescope-studio-ablation-" + std::to_string(::getpid()) +
                                      "-" + std::to_string(serial++) + ".h5");
  struct Remove {  // the results are read back into memory; the files are not kept
    std::filesystem::path h5;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(h5, ec);
      std::filesystem::remove(std::filesystem::path(h5).replace_extension(".csv"), ec);
    }
  } remove{file};

  AblationOptions o;
  o.trace = r.trace;
  o.output = file;
  if (!r.domain.empty()) o.run.only_domains = {r.domain};
  o.bootstrap = r.bootstrap;
  o.token_values = false;
  o.stop = stop;
  if (progress)
    o.on_progress = [&](int64_t done, int64_t total) {
      progress(total > 0 ? static_cast<double>(done) / total : 1.0);
    };
  const AblationSummary s = RunAblation(model, policies, o);
  if (s.interrupted) throw Cancelled();

  AblationOutcome out;
  out.domains = s.domains;
  out.ci_level = o.ci_level;
  out.documents = s.documents;
  out.tokens = s.tokens;
  out.seconds = s.seconds;
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
