#pragma once
// Hooks: the only door through which activations and routing decisions leave the engine.
// An observer lists the sites it wants; the engine hands it read-only views of its own buffers
// for those sites only. With no observer registered, nothing is copied or computed for hooks.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// Each site has one name (HookSiteName, HookPointName), which is also the tensor name of the
// forward output, golden files and Python where RecordForward records it: kHiddenOut is
// layers.{l}.hidden_out everywhere (docs/engine.md, "Hook sites and their names").
enum class HookSite : uint8_t {
  kEmbeddings,         // [T, H] embedding output (layer -1)
  kAttentionOutput,    // [T, H] attention output after o_proj, before the residual add
  kMoeInput,           // [T, H] post_attention_layernorm output: input of router and experts
  kRouterLogits,       // [T, E] router logits before top-k
  kTopkIds,            // [T, k] executed expert ids, descending weight (int32)
  kTopkWeights,        // [T, k] combine weights before the score scale factor
  kTopkScaledWeights,  // [T, k] combine weights as applied (after the scale factor)
  kExpertLoad,         // upstream's per-forward statistics: ids = load [E], values = importance [E]
  kExpertOutput,       // [n, H] one expert's outputs for the n tokens it received
  kMoeOutput,          // [T, H] MoE layer output, before the residual add
  kHiddenOut,          // [T, H] residual stream after the layer (the next layer's input)
  kFinalHidden,        // [T, H] output of the final norm (layer -1)
  kSharedExpertOutput,  // [T, H] the shared expert's output as added (after its gate)
  kSharedExpertGate,    // [T, 1] the weight the shared expert's output is added with: its sigmoid
                        // gate (Qwen2-MoE), or 1 when it has no gate; not sent when it is not run
  kCount
};

// "gate_logits", "hidden_out", ...: the name of a site, as in `moescope forward`'s output.
const char* HookSiteName(HookSite site);
// "layers.3.gate_logits", "embeddings", ...: the site at one layer, named as the forward output
// names that tensor.
std::string HookPointName(HookSite site, int layer);
// Sites that exist only in MoE layers (a dense LLaMA has no router).
bool IsRoutingSite(HookSite site);

// Which rows an event covers. Row t of every per-token array describes row t of the event.
struct TokenSpan {
  int64_t count = 0;
  const int32_t* sequence = nullptr;  // batch row of the token
  const int32_t* token_id = nullptr;  // input token id
  const int32_t* position = nullptr;  // position id
  const int32_t* document = nullptr;  // caller's document id, -1 if none was given
  const uint8_t* real = nullptr;      // 1 = real token, 0 = padding
};

struct HookEvent {
  HookSite site = HookSite::kCount;
  int layer = -1;
  const TokenSpan* tokens = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* values = nullptr;        // float sites, [rows, cols]
  const int32_t* ids = nullptr;         // kTopkIds [rows, cols]; kExpertLoad load [cols]
  int expert = -1;                      // kExpertOutput: which expert
  const int32_t* token_rows = nullptr;  // kExpertOutput: the token row of each output row
};

struct HookRequest {
  HookSite site;
  int layer;  // -1 = every layer (or the model-level site)
};

class RoutingObserver {
 public:
  virtual ~RoutingObserver() = default;
  // Asked once at registration; the answer must not change while registered.
  virtual std::vector<HookRequest> Requests() const = 0;
  // Views are valid only during the call.
  virtual void OnEvent(const HookEvent& event) = 0;
};

class HookRegistry;

// Removes its observer from the registry when it goes out of scope.
class [[nodiscard]] HookGuard {
 public:
  HookGuard() = default;
  HookGuard(HookRegistry* registry, RoutingObserver* observer)
      : registry_(registry), observer_(observer) {}
  HookGuard(HookGuard&& other) noexcept { *this = std::move(other); }
  HookGuard& operator=(HookGuard&& other) noexcept;
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
  ~HookGuard() { Release(); }
  void Release();

 private:
  HookRegistry* registry_ = nullptr;
  RoutingObserver* observer_ = nullptr;
};

class HookRegistry {
 public:
  HookRegistry(int num_layers, bool has_router)
      : num_layers_(num_layers), has_router_(has_router) {}

  // Throws Error when a request names a layer out of range or a site the model does not produce.
  HookGuard Add(RoutingObserver* observer);
  void Remove(RoutingObserver* observer);

  bool Wants(HookSite site, int layer) const;
  bool Empty() const { return entries_.empty(); }
  void Emit(const HookEvent& event) const;

 private:
  struct Entry {
    RoutingObserver* observer;
    std::vector<HookRequest> requests;
  };
  static bool Matches(const Entry& e, HookSite site, int layer);
  int num_layers_;
  bool has_router_;
  std::vector<Entry> entries_;
};

}  // namespace moe
