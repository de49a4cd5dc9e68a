#pragma once
// The routing policies an ablation sweep runs (docs/routing-metrics.md §2.9, with the semantics
// named explicitly): single experts disabled in turn (re-route, drop, drop + renormalize), the
// DeepSeekMoE top-r disable for r = 0..R with its random-r controls, k sweeps per layer or global,
// named expert sets and size-matched random-expert controls. Each policy knows the first layer it
// changes, so the residual stream below it can be reused.
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/routing_policy.h"

namespace moe {

struct AblationPolicy {
  std::string name;  // unique in a sweep, e.g. "L3E5-reroute", "top-r2", "k1", "L4k1"
  std::string kind;  // none | single | top_r | random_r | k | shared | dynamic_k | set |
                     // random_control | custom
  RoutingPolicy policy;
  int first_layer = 0;  // the lowest layer the policy changes; L when it changes nothing
  int layer = -1, expert = -1, r = -1, k = -1;  // sweep coordinates, -1 when not applicable
  std::string control_of;  // random_control: the set it matches; random_r: its top-r policy
};

// The lowest layer whose routing the policy can change (L when it is empty).
int FirstChangedLayer(const RoutingPolicy& policy, const ModelConfig& config);

// The baseline itself as a policy ("none"); its ΔNLL is exactly 0.
AblationPolicy NoAblation(const ModelConfig& config);

// Each (layer, expert) of `layers` (empty = all) disabled alone.
std::vector<AblationPolicy> SingleExpertSweep(const ModelConfig& config, DisableMode mode,
                                              const std::vector<int>& layers = {});

// DeepSeekMoE §4.5: every token's r best experts disabled (then top-k of the rest) in every
// layer of `layers` (empty = all), r = 0..max_r.
std::vector<AblationPolicy> TopRSweep(const ModelConfig& config, int max_r,
                                      const std::vector<int>& layers = {});

// The control of TopRSweep: for r = 1..max_r, `controls` policies that disable, per token and
// layer of `layers` (empty = all), r experts drawn uniformly at random from the token's k + r best
// (core/routing_policy.h, step 2b), so that the token runs k of the same k + r candidates as
// under top-r, chosen blindly instead of the worst k. Control i draws with seed + i (modulo
// 2^63). Named "random-r{r}" (control 0) and "random-r{r}/{i}" (i >= 1), kind "random_r",
// control_of "top-r{r}".
std::vector<AblationPolicy> RandomRSweep(const ModelConfig& config, int max_r, int controls,
                                         uint64_t seed, const std::vector<int>& layers = {});

// Top-k = each of `ks` (empty = 1..E) in every layer (global), or in one layer at a time.
std::vector<AblationPolicy> KSweep(const ModelConfig& config, bool per_layer,
                                   const std::vector<int>& ks = {});

// Dynamic k (core/dynamic_k.h) in every layer, one policy per value of `spec`:
// "threshold=T,...", "skip=BETA,..." (NAEE) or "top-p=P,...", values in [0, 1]; thresholds keep
// k_min experts. Named "threshold0.2" ("threshold0.2-kmin2"), "skip0.3", "top-p0.9", kind
// "dynamic_k". Ablation results carry the experts run per token and layer beside ΔNLL.
std::vector<AblationPolicy> DynamicKSweep(const ModelConfig& config, const std::string& spec,
                                          int k_min = 1);

// DeepSeekMoE's shared-expert ablation: "shared-off" (every MoE layer without its shared expert),
// then one policy per MoE layer ("L3-shared-off"). Error when the model has no shared expert.
std::vector<AblationPolicy> SharedExpertSweep(const ModelConfig& config);

// A named set of experts disabled together.
AblationPolicy ExpertSet(const ModelConfig& config, const std::string& name,
                         const std::vector<ExpertRef>& experts, DisableMode mode);

// `count` random sets with as many experts disabled in each layer as `set` has, never equal to
// it, drawn with `seed` (moe-vis's random-expert control, §2.9 "Specificity").
std::vector<AblationPolicy> RandomControls(const ModelConfig& config, const AblationPolicy& set,
                                           int count, uint64_t seed);

// A whole sweep as the CLI and the app ask for it: the baseline first, then every requested part;
// each top-r{r} is followed by its random-r controls.
struct SweepRequest {
  bool single_experts = false;
  DisableMode mode = DisableMode::kReroute;  // of single experts and sets
  std::vector<int> layers;                   // of the single-expert and top-r sweeps; empty = all
  int top_r_max = -1;                        // -1 = no top-r sweep
  int top_r_controls = 1;                    // random-r controls per r >= 1 of the top-r sweep
  std::string k_sweep;                       // "", "global" or "per-layer"
  std::vector<int> k_values;                 // empty = 1..E
  bool shared_expert = false;                // SharedExpertSweep
  std::vector<std::string> dynamic_k;        // DynamicKSweep specs
  int threshold_k_min = 1;                   // of the threshold sweeps
  std::vector<std::string> sets;             // "NAME=LAYER:EXPERT,..."
  int random_controls = 0;                   // per set
  uint64_t seed = 0;                         // of the random controls (sets and random-r)
  std::vector<std::string> policy_files;     // routing policy JSON files, named by their stem
};
// Throws Error naming the flag or file at fault, or when nothing but the baseline was asked for.
std::vector<AblationPolicy> BuildSweep(const SweepRequest& request, const ModelConfig& config);

// Throws Error naming the duplicate when two policies share a name.
void CheckUniqueNames(const std::vector<AblationPolicy>& policies);

}  // namespace moe
