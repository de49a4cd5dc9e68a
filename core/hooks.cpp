#include "core/hooks.h"

#include <algorithm>

#include "core/error.h"

namespace moe {

const char* HookSiteName(HookSite site) {
  switch (site) {
    case HookSite::kEmbeddings:
      return "embeddings";
    case HookSite::kAttentionOutput:
      return "attn_out";
    case HookSite::kMoeInput:
      return "moe_in";
    case HookSite::kRouterLogits:
      return "gate_logits";
    case HookSite::kTopkIds:
      return "topk_indices";
    case HookSite::kTopkWeights:
      return "topk_scores";
    case HookSite::kTopkScaledWeights:
      return "topk_scaled_scores";
    case HookSite::kExpertLoad:
      return "load";
    case HookSite::kExpertOutput:
      return "expert_out";
    case HookSite::kMoeOutput:
      return "moe_out";
    case HookSite::kHiddenOut:
      return "hidden_out";
    case HookSite::kFinalHidden:
      return "final_hidden";
    case HookSite::kSharedExpertOutput:
      return "shared_out";
    case HookSite::kSharedExpertGate:
      return "shared_gate";
    case HookSite::kCount:
      break;
  }
  return "unknown";
}

bool IsRoutingSite(HookSite site) {
  switch (site) {
    case HookSite::kRouterLogits:
    case HookSite::kTopkIds:
    case HookSite::kTopkWeights:
    case HookSite::kTopkScaledWeights:
    case HookSite::kExpertLoad:
    case HookSite::kSharedExpertOutput:
    case HookSite::kSharedExpertGate:
      return true;
    default:
      return false;
  }
}

static bool IsModelLevelSite(HookSite site) {
  return site == HookSite::kEmbeddings || site == HookSite::kFinalHidden;
}

std::string HookPointName(HookSite site, int layer) {
  if (IsModelLevelSite(site)) return HookSiteName(site);
  return "layers." + std::to_string(layer) + "." + HookSiteName(site);
}

HookGuard& HookGuard::operator=(HookGuard&& other) noexcept {
  if (this != &other) {
    Release();
    registry_ = other.registry_;
    observer_ = other.observer_;
    other.registry_ = nullptr;
    other.observer_ = nullptr;
  }
  return *this;
}

void HookGuard::Release() {
  if (registry_ != nullptr) registry_->Remove(observer_);
  registry_ = nullptr;
  observer_ = nullptr;
}

HookGuard HookRegistry::Add(RoutingObserver* observer) {
  std::vector<HookRequest> requests = observer->Requests();
  for (const HookRequest& r : requests) {
    if (r.site >= HookSite::kCount) Fail("hooks", "request names an unknown site");
    const std::string name = HookSiteName(r.site);
    if (IsModelLevelSite(r.site) && r.layer != -1)
      Fail("hooks", name + " is a model-level site; request it with layer -1, not " +
                        std::to_string(r.layer));
    if (r.layer < -1 || r.layer >= num_layers_)
      Fail("hooks", name + " asked for layer " + std::to_string(r.layer) + ", but the model has " +
                        std::to_string(num_layers_) + " layers (0.." +
                        std::to_string(num_layers_ - 1) + ")");
    if (IsRoutingSite(r.site) && !has_router_)
      Fail("hooks", name + " is not produced: this model has dense FFN layers and no router");
  }
  entries_.push_back({observer, std::move(requests)});
  return HookGuard(this, observer);
}

void HookRegistry::Remove(RoutingObserver* observer) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.observer == observer; }),
                 entries_.end());
}

bool HookRegistry::Matches(const Entry& e, HookSite site, int layer) {
  return std::any_of(e.requests.begin(), e.requests.end(), [&](const HookRequest& r) {
    return r.site == site && (r.layer == -1 || r.layer == layer);
  });
}

bool HookRegistry::Wants(HookSite site, int layer) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return Matches(e, site, layer); });
}

void HookRegistry::Emit(const HookEvent& event) const {
  for (const Entry& e : entries_)
    if (Matches(e, event.site, event.layer)) e.observer->OnEvent(event);
}

}  // namespace moe
