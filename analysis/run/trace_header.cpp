#include "analysis/run/trace_header.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/common/sha256.h"
#include "analysis/policy/policy_json.h"
#include "core/error.h"
#include "core/json_value.h"
#include "core/model_summary.h"
#include "core/tokenizer.h"

namespace moe {
namespace {

using nlohmann::json;

// config.json re-serialized compactly, so formatting differences do not count as a change.
std::string CanonicalConfig(const std::filesystem::path& file) {
  return ReadJsonFile(file).dump();
}

std::string CorpusDescription(const Corpus& corpus, const TraceRunSettings& s) {
  constexpr size_t kListedSkips = 100;
  json skipped = json::array();
  for (size_t i = 0; i < corpus.skipped.size() && i < kListedSkips; ++i)
    skipped.push_back(corpus.skipped[i]);
  json j = {{"files", s.corpus_files},
            {"default_domain", s.default_domain},
            {"only_domains", s.only_domains},
            {"max_documents_per_domain", s.max_documents_per_domain},
            {"max_tokens_per_document", s.max_tokens_per_document},
            {"documents", corpus.documents.size()},
            {"tokens", corpus.tokens()},
            {"skipped_count", corpus.skipped.size()},
            {"skipped", skipped}};
  return j.dump();
}

std::string ShardDescription(const Corpus& shard, const TraceRunSettings& s, int64_t first,
                             int64_t of) {
  json j = json::parse(CorpusDescription(shard, s));
  j["shard"] = {{"first_document", first}, {"corpus_documents", of}};
  return j.dump();
}

bool SameJson(const std::string& a, const std::string& b) {
  try {
    return json::parse(a) == json::parse(b);
  } catch (const json::exception&) {
    return a == b;
  }
}

}  // namespace

TraceHeader MakeTraceHeader(const LoadedModel& m, const RoutingPolicy& policy, const Corpus& corpus,
                            const TraceRunSettings& s) {
  const ModelConfig& c = m.config();
  TraceHeader h;
  h.model_path = std::filesystem::absolute(m.dir).lexically_normal().string();
  h.model_config = CanonicalConfig(m.dir / "config.json");
  json files = json::object();
  for (const std::string& f : m.checkpoint->Files()) files[f] = Sha256OfFile(m.dir / f);
  h.checkpoint_sha256 = files.dump();
  if (const std::filesystem::path tokenizer = TokenizerFileOf(m.dir); !tokenizer.empty())
    h.tokenizer_sha256 = Sha256OfFile(tokenizer);
  h.routing_policy = PolicyToJson(policy).dump();
  h.model_family = c.model_type;
  h.router_recipe = RouterRecipeText(c);
  h.moe_layers = c.moe_layer;
  h.num_layers = c.num_hidden_layers;
  h.num_experts = c.num_experts;
  h.top_k = policy.MaxSelections(c);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerPolicy* lp = policy.Layer(l);
    h.score_scale_factor.push_back(lp && lp->scale_factor ? *lp->scale_factor
                                                          : c.score_scale_factor[l]);
  }
  h.windowing = s.windows.Describe(c.context_length());
  h.corpus = CorpusDescription(corpus, s);
  h.corpus_sha256 = corpus.Fingerprint();
  h.domains = corpus.domains;
  h.source_id_bytes = 1;
  for (const CorpusDocument& d : corpus.documents)
    h.source_id_bytes = std::max(h.source_id_bytes, d.source_id.size());
  h.record_logits = s.record_logits;
  h.logit_sample_rate = s.record_logits ? s.logit_sample_rate : 0.0;
  h.record_shared_gate = c.shared_expert_width > 0;
  return h;
}

TraceHeader ShardTraceHeader(const TraceHeader& whole, const Corpus& shard,
                             const TraceRunSettings& s, int64_t first_document,
                             int64_t corpus_documents) {
  TraceHeader h = whole;
  h.corpus = ShardDescription(shard, s, first_document, corpus_documents);
  h.corpus_sha256 = shard.Fingerprint();
  return h;
}

void CheckResumable(const TraceAttributes& e, const std::vector<std::string>& existing_domains,
                    const TraceHeader& now) {
  auto differs = [&](const char* what, const std::string& then, const std::string& current) {
    Fail(e.path, std::string("cannot resume: the ") + what +
                     " differs from the one the trace was started with (trace: " + then +
                     "; now: " + current + ")");
  };
  if (!SameJson(e.model_config, now.model_config))
    differs("model config", e.model_config, now.model_config);
  if (!SameJson(e.checkpoint_sha256, now.checkpoint_sha256))
    differs("checkpoint (sha256)", e.checkpoint_sha256, now.checkpoint_sha256);
  if (e.tokenizer_sha256 != now.tokenizer_sha256)
    differs("tokenizer (sha256)", e.tokenizer_sha256, now.tokenizer_sha256);
  if (!SameJson(e.routing_policy, now.routing_policy))
    differs("routing policy", e.routing_policy, now.routing_policy);
  if (!SameJson(e.windowing, now.windowing)) differs("windowing", e.windowing, now.windowing);
  if (e.corpus_sha256 != now.corpus_sha256 || existing_domains != now.domains)
    differs("corpus (documents, domains or tokens)", e.corpus_sha256, now.corpus_sha256);
  if (e.record_logits != now.record_logits || e.logit_sample_rate != now.logit_sample_rate)
    differs("--record-logits / --logit-sample-rate setting",
            std::to_string(e.record_logits) + " / " + std::to_string(e.logit_sample_rate),
            std::to_string(now.record_logits) + " / " + std::to_string(now.logit_sample_rate));
  if (e.top_k != now.top_k || e.num_layers != now.num_layers || e.num_experts != now.num_experts)
    differs("routing shape (layers, experts, top_k)",
            std::to_string(e.num_layers) + "x" + std::to_string(e.num_experts) + " k" +
                std::to_string(e.top_k),
            std::to_string(now.num_layers) + "x" + std::to_string(now.num_experts) + " k" +
                std::to_string(now.top_k));
}

CorpusOptions CorpusOptionsOf(const TraceRunSettings& s) {
  return {s.default_domain, s.only_domains, s.max_documents_per_domain, s.max_tokens_per_document};
}

}  // namespace moe
