#pragma once
// The names and version of the trace schema (docs/trace-format.md describes each one; a test
// checks that the document, these names and a written file agree).
#include <array>
#include <string_view>

namespace moe::trace {

inline constexpr std::string_view kFormatName = "moescope-trace";
// Version rule: a reader accepts exactly the versions it knows (here only 1). Adding an optional
// dataset or attribute keeps the version; renaming, removing or changing the meaning, dtype or
// shape of anything bumps it.
inline constexpr int kFormatVersion = 1;

// Root attributes.
namespace attr {
inline constexpr const char* kFormat = "format";
inline constexpr const char* kFormatVersion = "format_version";
inline constexpr const char* kEngineVersion = "engine_version";
inline constexpr const char* kCreated = "created";
inline constexpr const char* kModelPath = "model_path";
inline constexpr const char* kModelConfig = "model_config";
inline constexpr const char* kCheckpointSha256 = "checkpoint_sha256";
inline constexpr const char* kTokenizerSha256 = "tokenizer_sha256";
inline constexpr const char* kRoutingPolicy = "routing_policy";
inline constexpr const char* kNumLayers = "num_layers";
inline constexpr const char* kNumExperts = "num_experts";
inline constexpr const char* kTopK = "top_k";
inline constexpr const char* kScoreScaleFactor = "score_scale_factor";
inline constexpr const char* kWindowing = "windowing";
inline constexpr const char* kCorpus = "corpus";
inline constexpr const char* kCorpusSha256 = "corpus_sha256";
inline constexpr const char* kRecordLogits = "record_logits";
inline constexpr const char* kLogitSampleRate = "logit_sample_rate";
inline constexpr const char* kComplete = "complete";
inline constexpr const char* kModelFamily = "model_family";
inline constexpr const char* kRouterRecipe = "router_recipe";
inline constexpr const char* kMoeLayers = "moe_layers";
}  // namespace attr

inline constexpr std::array<const char*, 22> kRootAttributes = {
    attr::kFormat,           attr::kFormatVersion,   attr::kEngineVersion,
    attr::kCreated,          attr::kModelPath,       attr::kModelConfig,
    attr::kCheckpointSha256, attr::kTokenizerSha256, attr::kRoutingPolicy,
    attr::kNumLayers,        attr::kNumExperts,      attr::kTopK,
    attr::kScoreScaleFactor, attr::kWindowing,       attr::kCorpus,
    attr::kCorpusSha256,     attr::kRecordLogits,    attr::kLogitSampleRate,
    attr::kComplete,         attr::kModelFamily,     attr::kRouterRecipe,
    attr::kMoeLayers};

// Datasets. N tokens, D documents, M domains, L layers, E experts, K = top_k (kmax),
// R sampled logit rows.
namespace ds {
inline constexpr const char* kTokenId = "/tokens/id";                   // [N] int32
inline constexpr const char* kTokenPosition = "/tokens/position";       // [N] int32
inline constexpr const char* kTokenDoc = "/tokens/doc";                 // [N] int32
inline constexpr const char* kTokenNll = "/tokens/nll";                 // [N] float32
inline constexpr const char* kTokenPredicted = "/tokens/predicted";     // [N] int32, optional
inline constexpr const char* kDocOffset = "/docs/offset";               // [D+1] int64
inline constexpr const char* kDocDomain = "/docs/domain";               // [D] int16
inline constexpr const char* kDocSourceId = "/docs/source_id";          // [D] fixed string
inline constexpr const char* kDomains = "/domains";                     // [M] fixed string
inline constexpr const char* kTopkIds = "/routing/topk_ids";            // [N, L, K] int16
inline constexpr const char* kTopkWeights = "/routing/topk_weights";    // [N, L, K] float32
inline constexpr const char* kSharedGate = "/routing/shared_gate";      // [N, L] float32, optional
inline constexpr const char* kRouterLogits = "/routing/router_logits";  // [R, L, E] float16
inline constexpr const char* kLogitToken = "/routing/logit_token";      // [R] int64
inline constexpr const char* kLoad = "/stats/load";                     // [M+1, L, E] int64
inline constexpr const char* kImportance = "/stats/importance";         // [M+1, L, E] float64
}  // namespace ds

inline constexpr std::array<const char*, 12> kRequiredDatasets = {
    ds::kTokenId,   ds::kTokenPosition, ds::kTokenDoc,    ds::kTokenNll,
    ds::kDocOffset, ds::kDocDomain,     ds::kDocSourceId, ds::kDomains,
    ds::kTopkIds,   ds::kTopkWeights,   ds::kLoad,        ds::kImportance};
// Optional: traces written before moescope recorded the model's top-1 prediction lack it, and
// readers treat it as absent (format_version unchanged: an added optional dataset); the shared
// expert's gate exists only for models with a shared expert.
inline constexpr std::array<const char*, 2> kOptionalDatasets = {ds::kTokenPredicted,
                                                                 ds::kSharedGate};
// Present exactly when record_logits is 1.
inline constexpr std::array<const char*, 2> kLogitDatasets = {ds::kRouterLogits, ds::kLogitToken};

}  // namespace moe::trace
