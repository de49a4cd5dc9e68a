#pragma once
// What the live prompt view asks for and what it shows: plain data shared by the view
// (gui/views/prompt_view.h, no analysis or Qt) and the job that runs it
// (gui/model/prompt_job.h, analysis/run/prompt_probe.h). Every number here was produced by Probe;
// the view only draws it.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/routing_policy.h"

namespace moe::studio {

// A forced route of the live prompt: the token at `position` takes `experts` at `layer` (core
// ForcedRoute), whatever its router says.
struct PromptForcedRoute {
  int layer = 0;
  int position = 0;          // token index in the prompt (BOS = 0)
  std::vector<int> experts;  // in this order; the first gets the highest weight
  bool operator==(const PromptForcedRoute&) const = default;
};

// One prompt run: the unmodified model, and, when experts are disabled or routes forced, the
// model with that routing policy (core routing_policy.h).
struct PromptRequest {
  std::string model_dir;
  std::string text;
  std::vector<std::pair<int, int>> disabled;  // (layer, expert), ascending
  DisableMode mode = DisableMode::kReroute;  // of the disabled experts
  std::vector<PromptForcedRoute> forced;
  int top_n = 5;
  int64_t serial = 0;  // the view's number for this request; echoed in the outcome
};

struct PromptPrediction {
  int32_t id = -1;
  std::string text;  // display text of the piece (TokenDisplayText)
  double probability = 0;
};

// One probe, reshaped for drawing.
struct PromptRun {
  int layers = 0, kmax = 0, experts = 0;
  std::vector<int32_t> token_id;       // [T]
  std::vector<std::string> text;       // [T] display text (DocumentText)
  std::vector<int16_t> ids;            // [T, L, kmax], -1 pads
  std::vector<float> weights;          // [T, L, kmax]
  std::vector<PromptPrediction> next;  // top_n, most probable first

  int64_t size() const { return static_cast<int64_t>(token_id.size()); }
  size_t Row(int64_t t, int layer) const {
    return (static_cast<size_t>(t) * layers + layer) * kmax;
  }
  int Top1(int64_t t, int layer) const { return ids[Row(t, layer)]; }
};

struct PromptOutcome {
  PromptRequest request;
  PromptRun base;                      // the unmodified model
  std::shared_ptr<PromptRun> ablated;  // with the request's policy; null when it has none
  double seconds = 0;
};

// The job as the view sees it, polled once per frame.
struct PromptStatus {
  bool running = false;
  std::string error;                             // why the last run failed; empty when it did not
  std::shared_ptr<const PromptOutcome> outcome;  // the last finished run, or null
};

}  // namespace moe::studio
