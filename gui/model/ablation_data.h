#pragma once
// What the ablation panel asks for and what it shows: plain data shared by the panel
// (gui/views/ablation_view.h, no analysis or Qt) and the job that runs it
// (gui/model/ablation_job.h, the analysis API's RunAblation). Every number here was produced by
// RunAblation; the panel only draws it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/routing_policy.h"

namespace moe::studio {

// One ablation run: the baseline and one policy over the open trace's documents.
struct AblationRequest {
  enum class Target { kExperts, kTopR, kTopK };
  Target target = Target::kExperts;
  int layer = 0;                 // kExperts: the layer of `experts`
  std::vector<int> experts;      // kExperts: disabled together
  int r = 1;                     // kTopR: every token's r best experts disabled in every layer
  int k = 1;                     // kTopK: top-k = k in every layer
  DisableMode mode = DisableMode::kReroute;  // kExperts: the semantics of the disabled experts
  std::string trace;             // the trace whose documents are run
  std::string domain;            // only this domain's documents; empty = all
  std::string model_dir;         // the model to run (the open one, or the trace's model_path)
  int bootstrap = 200;           // replicates of the confidence intervals (over documents)
};

// A prediction whose top-1 changed (analysis/ablation/ablation_diff.h, PredictionChange), with the
// display text of its tokens.
struct AblationChangeRow {
  int64_t document = -1;  // the document's index in the open trace (-1 when unknown)
  std::string source_id;
  int32_t position = 0;  // of the input token in its document
  // Token ids of the input, the true next token, and the top-1 prediction before and after,
  // and their display text (two ids may show alike, e.g. a piece and a byte).
  int32_t token_id = -1, target_id = -1, before_id = -1, after_id = -1;
  std::string token, target, before, after;
  double delta_nll = 0;
};

// One policy's results per domain (rows M domains, then all domains), and what it changed
// token by token.
struct AblationPolicyResult {
  std::string name, kind;
  std::vector<int64_t> tokens;                           // scored predictions
  std::vector<double> base_nll, policy_nll;              // mean NLL in nats
  std::vector<double> delta_nll, delta_low, delta_high;  // ΔNLL and its interval
  std::vector<double> kl, agreement;                     // mean KL, top-1 agreement

  int64_t predictions = 0, changed_predictions = 0;  // compared; with another top-1 (all)
  std::vector<AblationChangeRow> changes;            // the largest |ΔNLL| first (capped)
  // Routing diff (RoutingDiff): moves from expert i to expert j per layer, E = "none".
  int layers = 0, experts = 0;         // 0 when the run kept no diff
  int64_t routed_tokens = 0;           // tokens compared
  std::vector<int64_t> moved;          // [L, E + 1, E + 1]
  std::vector<int64_t> changed;        // [L] tokens whose experts at the layer differ
  std::vector<int64_t> first_changed;  // [L] tokens whose first expert differs
  int64_t Moved(int layer, int from, int to) const {
    return moved[(static_cast<size_t>(layer) * (experts + 1) + from) * (experts + 1) + to];
  }
};

struct AblationOutcome {
  std::vector<std::string> domains;  // M names; the row after them is "all"
  double ci_level = 0;
  int64_t documents = 0, tokens = 0;
  double seconds = 0;
  std::vector<AblationPolicyResult> policies;  // the baseline ("none") first
};

// The job as the panel sees it, polled once per frame.
struct AblationStatus {
  bool running = false;
  double progress = 0;  // fraction of predictions scored
  std::string error;    // why the last run failed; empty when it did not
  bool cancelled = false;
  std::shared_ptr<const AblationOutcome> outcome;  // the last finished run, or null
};

}  // namespace moe::studio
