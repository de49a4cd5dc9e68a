#pragma once
// Expert importance scores over a corpus (docs/pruning.md), per layer and expert, measured
// through the hooks of core/hooks.h:
//   frequency      routed tokens / tokens: the share of tokens that run the expert
//   mean_gate      sum of the expert's combine weights (before the scale factor) / tokens: 0 for
//                  tokens that did not pick it, so frequency and weight both count
//   reap           REAP: mean over routed tokens of gate weight x ||expert output||_2
//   max_activation the largest |value| of the expert's down_proj output over routed tokens (the
//                  "super experts" carry extreme outliers); no interval, a maximum has none
//   output_change  NAEE-style reconstruction loss: sum over tokens of
//                  ||layer output - layer output with the expert removed||^2 / tokens, the expert
//                  removed with reroute semantics (core/routing_policy.h step 1). Only tokens that
//                  picked the expert change, so only they are recomputed.
// Tokens are the real tokens of the corpus, each counted once (from the window that records it,
// run/trace_windows.h). Ratios of sums over documents carry percentile bootstrap intervals whose
// replicates reweight whole documents (as ablation estimates do).
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/run/trace_windows.h"
#include "core/moe_model.h"

namespace moe {

enum class ImportanceScore { kFrequency, kMeanGate, kReap, kMaxActivation, kOutputChange };
constexpr int kImportanceScores = 5;
const char* ImportanceScoreName(ImportanceScore score);  // "frequency", "mean_gate", ...
// Throws Error naming `where` for a name that is none of them.
ImportanceScore ParseImportanceScore(const std::string& name, const std::string& where);

struct ScoreValue {
  double value = 0, ci_low = 0, ci_high = 0;  // NaN interval without bootstrap or for a maximum
};

struct ExpertImportance {
  std::string model;  // the model folder, for the file
  int layers = 0, experts = 0, top_k = 0;
  std::vector<uint8_t> moe_layer;  // [L] 1 where the layer routes (others have no scores)
  int64_t documents = 0, tokens = 0;
  bool has_output_change = false;
  int bootstrap = 0;
  double ci_level = 0.95;
  // [score][layer * experts + expert]
  std::vector<std::vector<ScoreValue>> scores;
  std::vector<int64_t> routed;  // [layer * experts + expert] tokens routed

  const ScoreValue& At(ImportanceScore s, int layer, int expert) const {
    return scores[static_cast<int>(s)][static_cast<size_t>(layer) * experts + expert];
  }
};

struct ImportanceOptions {
  WindowRule windows;  // resolved against the model's context by the caller or here
  int batch_size = 8;
  bool output_change = true;  // the NAEE score costs about k MoE layers per layer per batch
  int bootstrap = 200;
  uint64_t seed = 0;
  double ci_level = 0.95;
  const std::atomic<bool>* stop = nullptr;
  // After each batch: windows and recorded tokens run so far and in all.
  std::function<void(int64_t windows, int64_t total_windows, int64_t tokens, int64_t total_tokens)>
      on_progress;
};

// Throws Error naming the option at fault, or when the model has no routed layer.
ExpertImportance MeasureExpertImportance(const MoeModel& model, const Corpus& corpus,
                                         const ImportanceOptions& options);

}  // namespace moe
