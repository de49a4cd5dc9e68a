#include "analysis/trace/attributes_io.h"

#include <algorithm>
#include <ctime>
#include <string>

#include "core/error.h"

#include "analysis/trace/trace_format.h"

namespace moe {
namespace {

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

void WriteNewTraceAttributes(hid_t f, const TraceAttributes& run, const h5::Place& root) {
  h5::WriteFlag(f, trace::attr::kComplete, false, root);
  h5::WriteAttribute(f, trace::attr::kFormat, std::string(trace::kFormatName), root);
  h5::WriteAttribute(f, trace::attr::kFormatVersion, int64_t{trace::kFormatVersion}, root);
  h5::WriteAttribute(f, trace::attr::kEngineVersion, std::string(MOESCOPE_VERSION), root);
  h5::WriteAttribute(f, trace::attr::kCreated, UtcNow(), root);
  WriteRunAttributes(f, run, root);
  h5::WriteFlag(f, trace::attr::kRecordLogits, run.record_logits, root);
  h5::WriteAttribute(f, trace::attr::kLogitSampleRate, run.logit_sample_rate, root);
}

void WriteRunAttributes(hid_t f, const TraceAttributes& h, const h5::Place& root) {
  namespace attr = trace::attr;
  h5::WriteAttribute(f, attr::kModelPath, h.model_path, root);
  h5::WriteAttribute(f, attr::kModelConfig, h.model_config, root);
  h5::WriteAttribute(f, attr::kCheckpointSha256, h.checkpoint_sha256, root);
  h5::WriteAttribute(f, attr::kTokenizerSha256, h.tokenizer_sha256, root);
  h5::WriteAttribute(f, attr::kRoutingPolicy, h.routing_policy, root);
  h5::WriteAttribute(f, attr::kNumLayers, int64_t{h.num_layers}, root);
  h5::WriteAttribute(f, attr::kNumExperts, int64_t{h.num_experts}, root);
  h5::WriteAttribute(f, attr::kTopK, int64_t{h.top_k}, root);
  h5::WriteAttribute(f, attr::kScoreScaleFactor, h.score_scale_factor, root);
  h5::WriteAttribute(f, attr::kWindowing, h.windowing, root);
  h5::WriteAttribute(f, attr::kCorpus, h.corpus, root);
  h5::WriteAttribute(f, attr::kCorpusSha256, h.corpus_sha256, root);
  h5::WriteAttribute(f, attr::kModelFamily, h.model_family, root);
  h5::WriteAttribute(f, attr::kRouterRecipe, h.router_recipe, root);
  std::vector<float> moe_layers(h.moe_layers.begin(), h.moe_layers.end());
  if (moe_layers.empty()) moe_layers.assign(static_cast<size_t>(h.num_layers), 1.0f);
  h5::WriteAttribute(f, attr::kMoeLayers, moe_layers, root);
}

void ReadRunAttributes(hid_t f, const h5::Place& root, TraceAttributes& i) {
  namespace attr = trace::attr;
  auto text = [&](const char* name) { return h5::ReadStringAttribute(f, name, root); };
  auto integer = [&](const char* name) {
    return static_cast<int>(h5::ReadIntAttribute(f, name, root));
  };
  i.model_path = text(attr::kModelPath);
  i.model_config = text(attr::kModelConfig);
  i.checkpoint_sha256 = text(attr::kCheckpointSha256);
  i.tokenizer_sha256 = text(attr::kTokenizerSha256);
  i.routing_policy = text(attr::kRoutingPolicy);
  i.windowing = text(attr::kWindowing);
  i.corpus = text(attr::kCorpus);
  i.corpus_sha256 = text(attr::kCorpusSha256);
  i.num_layers = integer(attr::kNumLayers);
  i.num_experts = integer(attr::kNumExperts);
  i.top_k = integer(attr::kTopK);
  i.score_scale_factor = h5::ReadFloatsAttribute(f, attr::kScoreScaleFactor, root);
  // Optional: files written before other families were supported are LLaMA-MoE, every layer MoE.
  i.model_family = h5::HasAttribute(f, attr::kModelFamily) ? text(attr::kModelFamily) : "llama_moe";
  i.router_recipe = h5::HasAttribute(f, attr::kRouterRecipe) ? text(attr::kRouterRecipe) : "";
  i.moe_layers.assign(static_cast<size_t>(std::max(i.num_layers, 0)), 1);
  if (h5::HasAttribute(f, attr::kMoeLayers)) {
    const std::vector<float> kinds = h5::ReadFloatsAttribute(f, attr::kMoeLayers, root);
    if (static_cast<int>(kinds.size()) != i.num_layers)
      Fail(root.str(), "attribute moe_layers has " + std::to_string(kinds.size()) +
                           " entries, num_layers is " + std::to_string(i.num_layers));
    for (size_t l = 0; l < kinds.size(); ++l) {
      if (kinds[l] != 0.0f && kinds[l] != 1.0f)
        Fail(root.str(), "attribute moe_layers[" + std::to_string(l) + "] is not 0 or 1");
      i.moe_layers[l] = kinds[l] == 1.0f;
    }
  }
}

}  // namespace moe
