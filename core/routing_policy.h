#pragma once
// Interventions on routing, as data (docs/engine.md, "Routing policies"). A policy is applied
// inside the MoE layer; what the hooks see afterwards is what was executed.
//
// Semantics per layer, in order:
//   1. reroute: disabled experts leave the candidates before top-k (and before group scores of a
//      group-limited router), so tokens pick other experts;
//   2. top-r disable: each token's r best experts (after 1) are excluded, then top-k of the rest
//      (DeepSeekMoE's ablation);
//   2b. random-r disable (the control of 2): r experts drawn uniformly at random from the token's
//      next k + r candidates (after 1 and 2; k of step 3) are excluded, so the token runs k of
//      the same k + r candidates that top-r chooses from, but not always the worst k. The draw is
//      a hash of (seed, layer, document, position id, token id), never a running generator, so it
//      is the same whatever the batch, the batch size, the threads or the KV cache
//      (RandomRRanks);
//   3. k is the layer's top_k override, or the config's num_selects;
//   3b. dynamic k: threshold, skip (NAEE) and top-p rules keep a prefix of the k selections
//      (core/dynamic_k.h defines the scores they compare for each router recipe);
//   4. forced routes replace the selection of matching tokens: first the route table's row of
//      the token's (document, position), then the matching entries of `forced`, in order;
//   5. weights: the model's router recipe on the selected experts (softmax over their logits, or
//      their raw logits, or their softmax/sigmoid scores, renormalized where the model does);
//   6. drop / drop-renormalize: disabled experts that were selected are removed after the
//      weights were computed; with renormalize the remaining weights are rescaled to their
//      original sum;
//   7. the scale factor is the override, or the config's score_scale_factor of the layer;
//   8. a disabled shared expert is not run (DeepSeekMoE's shared-expert ablation).
// Dense layers have no router: settings made for every layer pass over them, and experts disabled
// or forced in a dense layer are refused.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moe {

struct ModelConfig;

enum class DisableMode { kReroute, kDrop, kDropRenormalize };
const char* DisableModeName(DisableMode mode);  // "reroute", "drop", "drop-renorm"

// Which expert of which layer.
struct ExpertRef {
  int layer = 0;
  int expert = 0;
  bool operator==(const ExpertRef&) const = default;
};

struct ForcedRoute {
  int layer = -1;                // -1 = every layer
  int32_t token_id = -1;         // match tokens with this id (-1 = any)
  int32_t position = -1;         // match tokens at this position (-1 = any)
  std::vector<int32_t> experts;  // the route these tokens take, in this order
};

struct LayerPolicy {
  std::vector<int32_t> disabled;  // experts switched off in this layer
  int top_k = 0;                  // 0 = the config's num_selects
  int top_r_disable = 0;          // r of step 2
  int random_r_disable = 0;       // r of step 2b
  uint64_t random_r_seed = 0;     // seed of step 2b's draws (at most 2^63 - 1)
  std::optional<float> scale_factor;
  bool shared_expert_disabled = false;  // step 8
  // Step 3b (core/dynamic_k.h); 0 = off.
  float threshold = 0;      // t in [0, 1]: add selections while q >= t x the top q
  int threshold_k_min = 1;  // selections always kept under a threshold
  float skip_beta = 0;      // beta in [0, 1]: drop selections with q < beta x the first's
  float top_p = 0;          // p in [0, 1]: the smallest prefix with probability mass >= p
};

// Routes recorded elsewhere, forced token by token (step 4; `moescope replay`,
// docs/route-replay.md). Document d's rows are doc_offset[d] .. doc_offset[d + 1] - 1, one per
// position from 0; each row holds `k` expert ids per layer, -1 pads (dense layers: all -1).
struct RouteTable {
  int layers = 0, k = 0;
  std::vector<int64_t> doc_offset;  // [D + 1]
  std::vector<int32_t> ids;         // [rows, layers, k]

  int64_t rows() const { return doc_offset.empty() ? 0 : doc_offset.back(); }
  // The route of (document, position) at `layer`: k ids, -1 pads; null when the table has none.
  const int32_t* Find(int32_t document, int32_t position, int layer) const;
};

struct RoutingPolicy {
  DisableMode mode = DisableMode::kReroute;
  std::vector<LayerPolicy> layers;  // empty, or one entry per layer
  std::vector<ForcedRoute> forced;
  std::shared_ptr<const RouteTable> routes;  // null = none

  bool empty() const;
  // Throws Error naming the offending entry: layer or expert out of range, every expert of a
  // layer disabled, k or r out of range, an empty forced route, a dynamic-k rule out of range, a
  // route table row with an expert out of range or twice.
  void Validate(const ModelConfig& config) const;
  // Largest number of experts any token can take in any layer under this policy.
  int MaxSelections(const ModelConfig& config) const;
  const LayerPolicy* Layer(int layer) const;

  // Typed builders; each returns *this. The first change sizes `layers` to num_layers entries;
  // a layer out of range is an Error. Values are checked by Validate, not here.
  RoutingPolicy& Disable(ExpertRef expert, int num_layers);
  RoutingPolicy& SetTopK(int layer, int k, int num_layers);  // layer -1: every layer
  RoutingPolicy& SetTopR(int layer, int r, int num_layers);  // layer -1: every layer
  RoutingPolicy& SetRandomR(int layer, int r, uint64_t seed, int num_layers);  // layer -1: every
  RoutingPolicy& SetScaleFactor(int layer, float factor, int num_layers);      // layer -1: every
  RoutingPolicy& DisableSharedExpert(int layer, int num_layers);               // layer -1: every
  // Dynamic k (step 3b), layer -1: every layer.
  RoutingPolicy& SetThreshold(int layer, float t, int k_min, int num_layers);
  RoutingPolicy& SetSkipBeta(int layer, float beta, int num_layers);
  RoutingPolicy& SetTopP(int layer, float p, int num_layers);
  static RoutingPolicy Disabling(const std::vector<ExpertRef>& experts, DisableMode mode,
                                 int num_layers);

 private:
  LayerPolicy& LayerToChange(int layer, int num_layers);
};

// Step 2b's draw for one token: `r` distinct ranks of [0, pool) (0 = the best remaining
// candidate), uniformly, in the order drawn. A partial Fisher-Yates shuffle whose j-th swap takes
// rank j + floor(u_j (pool - j)), with u_j in [0, 1) the top 53 bits of
//   h = M(M(M(M(M(M(seed) ^ layer) ^ document) ^ position) ^ token_id) ^ j)
// (M: splitmix64's finalizer; document, position and token id as their 32-bit two's complement,
// so -1 = 0xffffffff; tests/python/check_random_r.py implements the same).
std::vector<int> RandomRRanks(uint64_t seed, int layer, int32_t document, int32_t position,
                              int32_t token_id, int r, int pool);

}  // namespace moe
