#pragma once
// The live prompt view's background job: runs a PromptRequest with the analysis API
// (analysis/run/prompt_probe.h: Probe, once unmodified and once with the request's routing policy:
// disabled experts re-routed or dropped, forced routes) on its own thread. Typing sends many
// requests; only the newest waiting one runs (older ones are dropped), so the view follows the text
// without a queue building up. No Qt: the shell polls Status() from a timer, tests call
// RunPromptRequest directly.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "gui/model/prompt_data.h"

namespace moe {
struct LoadedModel;
struct ModelConfig;
struct RoutingPolicy;
}  // namespace moe

namespace moe::studio {

// The routing policy of a request: its disabled experts with its semantics (mode) and its forced
// routes. Throws moe::Error for an unknown mode or a layer out of range.
RoutingPolicy PromptPolicy(const PromptRequest& request, const ModelConfig& config);

// Runs `request` on `model` (whose hooks it uses for the call). Throws moe::Error for a model
// without a tokenizer or a disabled expert out of range.
PromptOutcome RunPromptRequest(const LoadedModel& model, const PromptRequest& request);

class PromptJob {
 public:
  PromptJob();
  ~PromptJob();  // drops what waits, finishes the current run, joins
  PromptJob(const PromptJob&) = delete;
  PromptJob& operator=(const PromptJob&) = delete;

  // Queues `request`, replacing one that has not started.
  void Start(const PromptRequest& request);
  // Waits until nothing runs or waits (tests).
  void Wait();
  PromptStatus Status() const;

 private:
  void Loop();

  mutable std::mutex mutex_;  // guards everything below but the thread
  std::condition_variable wake_, idle_;
  std::optional<PromptRequest> pending_;
  bool running_ = false, quit_ = false;
  std::string error_;
  std::shared_ptr<const PromptOutcome> outcome_;
  // The job's own copy of the model, loaded on first use and kept while the requests name the
  // same folder: the probe installs hooks, which must not meet another user of the app's model.
  std::shared_ptr<LoadedModel> model_;
  std::thread thread_;
};

}  // namespace moe::studio
