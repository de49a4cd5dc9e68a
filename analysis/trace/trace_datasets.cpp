#include "analysis/trace/trace_datasets.h"

#include "analysis/trace/trace_format.h"

namespace moe {

TraceDatasets TraceDatasets::Open(hid_t f, const std::string& path, bool logits) {
  auto open = [&](const char* name) { return h5::OpenDataset(f, name, {path, name}); };
  TraceDatasets d;
  d.id = open(trace::ds::kTokenId);
  d.position = open(trace::ds::kTokenPosition);
  d.doc = open(trace::ds::kTokenDoc);
  d.nll = open(trace::ds::kTokenNll);
  if (h5::Exists(f, trace::ds::kTokenPredicted)) d.predicted = open(trace::ds::kTokenPredicted);
  d.offset = open(trace::ds::kDocOffset);
  d.domain = open(trace::ds::kDocDomain);
  d.source_id = open(trace::ds::kDocSourceId);
  d.domains = open(trace::ds::kDomains);
  d.topk_ids = open(trace::ds::kTopkIds);
  d.topk_weights = open(trace::ds::kTopkWeights);
  if (h5::Exists(f, trace::ds::kSharedGate)) d.shared_gate = open(trace::ds::kSharedGate);
  d.load = open(trace::ds::kLoad);
  d.importance = open(trace::ds::kImportance);
  if (logits) {
    d.router_logits = open(trace::ds::kRouterLogits);
    d.logit_token = open(trace::ds::kLogitToken);
  }
  return d;
}

}  // namespace moe
