#include "core/moe_model.h"

#include "core/attention.h"
#include "core/decode_step.h"
#include "core/error.h"
#include "core/linear.h"
#include "core/moe_layer.h"
#include "core/ops.h"
#include "core/rope.h"
#include "core/scratch_buffer.h"

namespace moe {
namespace {

void EmitActivations(const HookRegistry& hooks, HookSite site, int layer, const TokenSpan& span,
                     int64_t cols, const float* values) {
  if (!hooks.Wants(site, layer)) return;
  HookEvent ev;
  ev.site = site;
  ev.layer = layer;
  ev.tokens = &span;
  ev.rows = span.count;
  ev.cols = cols;
  ev.values = values;
  hooks.Emit(ev);
}

}  // namespace

MoeModel::MoeModel(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      one_region_plan_(PlanOneRegionDecode(config_, weights_)),
      hooks_(config_.num_hidden_layers, config_.is_moe) {}

std::vector<float> MoeModel::Forward(const Batch& batch, KvCache* cache,
                                     const RoutingPolicy* policy) const {
  return Run(batch, 0, config_.num_hidden_layers, {}, cache, policy, /*final_norm=*/true);
}

std::vector<float> MoeModel::ResidualBefore(const Batch& batch, int layer,
                                            const RoutingPolicy* policy) const {
  if (layer < 0 || layer > config_.num_hidden_layers)
    Fail("forward", "layer " + std::to_string(layer) + " is out of range");
  return Run(batch, 0, layer, {}, nullptr, policy, /*final_norm=*/false);
}

std::vector<float> MoeModel::ForwardFrom(const Batch& batch, int layer, std::vector<float> residual,
                                         const RoutingPolicy* policy) const {
  if (layer < 0 || layer > config_.num_hidden_layers)
    Fail("forward", "layer " + std::to_string(layer) + " is out of range");
  if (residual.size() != static_cast<size_t>(batch.tokens() * config_.hidden_size))
    Fail("forward", "the residual stream does not hold batch tokens x hidden_size values");
  return Run(batch, layer, config_.num_hidden_layers, std::move(residual), nullptr, policy,
             /*final_norm=*/true);
}

std::vector<float> MoeModel::Run(const Batch& batch, int first, int last, std::vector<float> hidden,
                                 KvCache* cache, const RoutingPolicy* policy,
                                 bool final_norm) const {
  batch.Validate(config_);
  const int64_t T = batch.tokens(), H = config_.hidden_size;
  KvCache local(config_, cache ? 0 : batch.batch_size, cache ? 0 : batch.seq_len);
  KvCache& kv = cache ? *cache : local;
  if (kv.batch_size() != batch.batch_size)
    Fail("forward", "the KV cache holds " + std::to_string(kv.batch_size()) +
                        " sequences, the batch has " + std::to_string(batch.batch_size));
  const int64_t key_length = kv.length() + batch.seq_len;
  if (key_length > config_.max_sequence_length())
    Fail("forward", std::to_string(key_length) + " tokens exceed the context length of " +
                        std::to_string(config_.max_sequence_length()));
  kv.Reserve(key_length);  // a caller's cache grows as needed

  std::vector<uint8_t> real(batch.mask.begin(), batch.mask.end());
  std::vector<int32_t> sequence(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) sequence[t] = static_cast<int32_t>(t / batch.seq_len);
  const TokenSpan span{
      T,          sequence.data(), batch.ids.data(), batch.positions.data(), batch.documents.data(),
      real.data()};

  if (first == 0) {
    hidden.resize(static_cast<size_t>(T * H));  // [T, H] residual stream
    for (int64_t t = 0; t < T; ++t) CopyRow(weights_.embed, batch.ids[t], hidden.data() + t * H);
    if (config_.embedding_multiplier != 1.0f)  // Granite
      for (float& x : hidden) x *= config_.embedding_multiplier;
    EmitActivations(hooks_, HookSite::kEmbeddings, -1, span, H, hidden.data());
  }
  if (first < last && DecodesInOneRegion(one_region_plan_, batch, hooks_, policy))
    DecodeLayersInOneRegion(config_, weights_, one_region_plan_, first, last, batch, span, policy,
                            kv, hidden);
  else
    for (int l = first; l < last; ++l) Layer(l, batch, span, policy, kv, hidden);
  kv.Advance(batch.seq_len);
  if (!final_norm) return hidden;  // a residual stream
  RmsNorm(hidden.data(), T, H, weights_.final_norm, config_.rms_norm_eps, hidden.data());
  EmitActivations(hooks_, HookSite::kFinalHidden, -1, span, H, hidden.data());
  return hidden;
}

void MoeModel::Layer(int l, const Batch& batch, const TokenSpan& span, const RoutingPolicy* policy,
                     KvCache& cache, std::vector<float>& hidden) const {
  const int64_t T = batch.tokens(), H = config_.hidden_size;
  const LayerWeights& w = weights_.layers[l];
  // Per-thread scratch reused across layers and calls (see attention.cpp).
  thread_local ScratchBuffer<float> normed_buffer, delta_buffer;
  float* normed = normed_buffer.Get(hidden.size());  // [T, H]
  float* delta = delta_buffer.Get(hidden.size());    // [T, H] attention or MoE output

  RmsNorm(hidden.data(), T, H, w.input_norm, config_.rms_norm_eps, normed);
  const Rope rope(config_, cache.length() + batch.seq_len);
  SelfAttention(config_, w, l, normed, batch, rope, cache, delta);
  EmitActivations(hooks_, HookSite::kAttentionOutput, l, span, H, delta);
  AddResidual(delta, config_.residual_multiplier, T * H, hidden.data());

  RmsNorm(hidden.data(), T, H, w.post_attention_norm, config_.rms_norm_eps, normed);
  EmitActivations(hooks_, HookSite::kMoeInput, l, span, H, normed);
  MoeLayer(config_, l, w, normed, span, policy, hooks_, delta);
  EmitActivations(hooks_, HookSite::kMoeOutput, l, span, H, delta);
  AddResidual(delta, config_.residual_multiplier, T * H, hidden.data());
  EmitActivations(hooks_, HookSite::kHiddenOut, l, span, H, hidden.data());
}

}  // namespace moe
