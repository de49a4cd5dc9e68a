#pragma once
// moescope as the referee of routing recorded elsewhere (docs/route-replay.md): the engine runs a
// corpus twice, A and B, and for every MoE layer reports how often the two routings agree, and
// what B costs in next-token NLL against A, with bootstrap intervals over documents.
//   Replay: A = the engine's own routing, B = the imported routes forced token by token
//     (RoutingPolicy::routes). Agreement compares the engine's own selection with the file's.
//   Precision: A = fp32 activations, B = bf16 activations (core/activation_precision.h), both
//     with the engine's own routing; 1 - set agreement is the flip rate.
// Every document runs whole, in one window from its first token, so a token's (document,
// position) is that of the route table's row; a document longer than the model's context is an
// Error naming it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_result.h"
#include "analysis/corpus/corpus.h"
#include "core/moe_model.h"
#include "core/routing_policy.h"

namespace moe {

struct LayerAgreement {
  int layer = 0;
  int64_t tokens = 0;
  // Fractions of tokens: the same set of experts; the same first expert (highest weight for the
  // engine, the file's first column for imported routes). Intervals over documents.
  Estimate set_agreement, top1_agreement;
};

struct RouteAudit {
  std::string reference, subject;      // what A and B are, e.g. "fp32" and "bf16"
  std::vector<std::string> domains;    // [M]
  std::vector<LayerAgreement> layers;  // the MoE layers, in order
  // B against A per domain (row M: all): ΔNLL = NLL(B) - NLL(A), top-1 next-token agreement;
  // kl is not measured here (NaN).
  std::vector<AblationDomainResult> nll;
  int64_t documents = 0, tokens = 0;
};

struct AuditOptions {
  int batch_size = 4;
  int bootstrap = 200;  // replicates over documents (0: no intervals)
  uint64_t seed = 0;
  double ci_level = 0.95;
};

// Replay: `routes` must hold one row per corpus token (analysis/replay/route_import.h).
RouteAudit AuditImportedRoutes(const MoeModel& model, const Corpus& corpus,
                               const RouteTable& routes, const AuditOptions& options);

// fp32 vs bf16 activations, the engine's own routing in both.
RouteAudit AuditPrecision(const MoeModel& model, const Corpus& corpus, const AuditOptions& options);

// The engine's own routes over the corpus (current activation precision), one row per token:
// what `moescope replay --export-routes` writes, and what a replay of it must agree with fully.
RouteTable RecordOwnRoutes(const MoeModel& model, const Corpus& corpus,
                           const AuditOptions& options);

// A table of the report: per layer, agreements with intervals; per domain, ΔNLL.
std::string FormatRouteAudit(const RouteAudit& audit);

// The tidy CSV: audit, layer, domain, metric, value, ci_low, ci_high, n. Replaces only a regular
// file.
void WriteRouteAuditCsv(const std::string& path, const std::vector<RouteAudit>& audits);
// That CSV read back, audits in file order ("subject vs reference" split at the first " vs ";
// domains in the order rows name them, "all" last). Throws Error naming the file, line and
// column: a missing column, a value that is not a number, an unknown metric, a layer below -1.
std::vector<RouteAudit> ReadRouteAuditCsv(const std::filesystem::path& path);

}  // namespace moe
