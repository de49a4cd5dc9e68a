#include "core/forward_record.h"

#include <map>
#include <string>

#include "core/heads.h"
#include "core/hooks.h"

namespace moe {
namespace {

// Collects the requested sites of one forward call into named tensors.
class Recorder : public RoutingObserver {
 public:
  Recorder(const MoeModel& model, const Batch& batch, bool activations)
      : model_(model), batch_(batch), activations_(activations) {}

  std::vector<HookRequest> Requests() const override {
    std::vector<HookSite> sites;
    const ModelConfig& c = model_.config();
    if (c.is_moe)
      sites = {HookSite::kRouterLogits, HookSite::kTopkIds, HookSite::kTopkWeights,
               HookSite::kExpertLoad};
    if (c.shared_expert_width > 0)
      sites.insert(sites.end(), {HookSite::kSharedExpertOutput, HookSite::kSharedExpertGate});
    if (activations_)
      for (HookSite s : {HookSite::kEmbeddings, HookSite::kAttentionOutput, HookSite::kMoeInput,
                         HookSite::kMoeOutput, HookSite::kHiddenOut})
        sites.push_back(s);
    std::vector<HookRequest> r;
    for (HookSite s : sites) r.push_back({s, -1});
    return r;
  }

  void OnEvent(const HookEvent& e) override {
    const std::string name = HookPointName(e.site, e.layer);  // the tensor's name in the output
    const Shape tokens_by_hidden{batch_.batch_size, batch_.seq_len, e.cols};
    switch (e.site) {
      case HookSite::kEmbeddings:
      case HookSite::kAttentionOutput:
      case HookSite::kMoeInput:
      case HookSite::kMoeOutput:
      case HookSite::kHiddenOut:
      case HookSite::kSharedExpertOutput:
        Add(name, tokens_by_hidden, e.values);
        break;
      case HookSite::kRouterLogits:
      case HookSite::kSharedExpertGate:
      case HookSite::kTopkWeights:
        Add(name, {e.rows, e.cols}, e.values);
        break;
      case HookSite::kTopkIds:
        out_.push_back(MakeI32Tensor(name, {e.rows, e.cols}, e.ids));
        break;
      case HookSite::kExpertLoad:  // upstream's two statistics: load (ids) and importance
        out_.push_back(MakeI32Tensor(name, {e.cols}, e.ids));
        Add("layers." + std::to_string(e.layer) + ".importance", {e.cols}, e.values);
        break;
      default:
        break;
    }
  }

  std::vector<OwnedTensor> Take() { return std::move(out_); }

 private:
  void Add(const std::string& name, Shape shape, const float* values) {
    out_.push_back(MakeF32Tensor(name, std::move(shape), values));
  }
  const MoeModel& model_;
  const Batch& batch_;
  bool activations_;
  std::vector<OwnedTensor> out_;
};

}  // namespace

std::vector<OwnedTensor> RecordForward(const MoeModel& model, const Batch& batch,
                                       const ForwardRecordOptions& options) {
  if (options.policy != nullptr) options.policy->Validate(model.config());
  Recorder recorder(model, batch, options.activations);
  std::vector<float> hidden;
  {
    HookGuard guard = model.hooks().Add(&recorder);
    hidden = model.Forward(batch, nullptr, options.policy);
  }
  std::vector<OwnedTensor> out = recorder.Take();
  const ModelConfig& c = model.config();
  const int64_t B = batch.batch_size, S = batch.seq_len;
  out.push_back(MakeF32Tensor("final_hidden", {B, S, c.hidden_size}, hidden.data()));
  switch (c.architecture) {
    case Architecture::kCausalLM: {
      const std::vector<float> logits = LmLogits(model, hidden.data(), batch.tokens());
      out.push_back(MakeF32Tensor("logits", {B, S, c.vocab_size}, logits.data()));
      break;
    }
    case Architecture::kModel:
      break;
    case Architecture::kSequenceClassification: {
      const SequenceClassification cls = ClassifySequences(model, batch, hidden);
      out.push_back(MakeF32Tensor("cls_logits", {B, c.num_labels}, cls.logits.data()));
      out.push_back(MakeI32Tensor("pooled_index", {B}, cls.pooled_index.data()));
      break;
    }
    case Architecture::kQuestionAnswering: {
      const QuestionAnswering qa = AnswerLogits(model, batch, hidden);
      out.push_back(MakeF32Tensor("start_logits", {B, S}, qa.start_logits.data()));
      out.push_back(MakeF32Tensor("end_logits", {B, S}, qa.end_logits.data()));
      break;
    }
  }
  return out;
}

}  // namespace moe
