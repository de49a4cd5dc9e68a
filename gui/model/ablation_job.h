#pragma once
// The ablation panel's background job: turns an AblationRequest into routing policies
// (analysis/ablation/ablation_policies.h: NoAblation, ExpertSet, TopRSweep, KSweep) and runs them with
// the analysis API (RunAblationPass over the trace's documents, in memory: no file is written),
// on its own thread with progress and cancel. No Qt: the shell polls Status() from a timer, tests call
// RunAblationRequest directly.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "analysis/ablation/ablation_policies.h"
#include "gui/model/ablation_data.h"

namespace moe::studio {

// The baseline ("none") and the requested policy. Throws moe::Error for an empty expert set or
// an r or k out of range.
std::vector<AblationPolicy> AblationPolicies(const AblationRequest& request,
                                             const ModelConfig& config);

// Changed predictions kept per policy (the largest |ΔNLL|): what a table can show.
inline constexpr size_t kMaxChangeRows = 2000;

// Loads the request's model and runs the policies over the trace's documents (those of
// request.domain when set), keeping each policy's token-level diff (analysis/ablation/ablation_diff.h).  Nothing
// touches the filesystem but reading the model and the trace. `progress` gets the fraction scored; a set
// `stop` ends the run after the current batch and throws Cancelled (studio_loader.h).
AblationOutcome RunAblationRequest(const AblationRequest& request,
                                   const std::atomic<bool>* stop = nullptr,
                                   const std::function<void(double)>& progress = {});

// One run at a time on a background thread.
class AblationJob {
 public:
  AblationJob() = default;
  ~AblationJob();  // cancels and joins
  AblationJob(const AblationJob&) = delete;
  AblationJob& operator=(const AblationJob&) = delete;

  // Cancels a run in progress (waiting for it) and starts this one.
  void Start(const AblationRequest& request);
  void Cancel();
  // Waits for the run to end (tests).
  void Wait();
  AblationStatus Status() const;

 private:
  void Join();

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<int> per_mille_{0};
  mutable std::mutex mutex_;  // guards the fields below
  std::string error_;
  bool cancelled_ = false;
  std::shared_ptr<const AblationOutcome> outcome_;
};

}  // namespace moe::studio
