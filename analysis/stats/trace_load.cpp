#include "analysis/stats/trace_load.h"

#include <algorithm>
#include <string>

#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"

namespace moe {

ExpertStats ComputeDomainLoad(const TraceReader& reader) {
  const auto& info = reader.info();
  ExpertStats s(static_cast<int>(reader.domains().size()), info.num_layers, info.num_experts);
  const int64_t block = 1 << 16;
  const int64_t per_token = static_cast<int64_t>(info.num_layers) * info.top_k;
  const int64_t tokens = reader.num_tokens(), documents = reader.num_documents();
  for (int64_t begin = 0; begin < tokens; begin += block) {
    const int64_t count = std::min(block, tokens - begin);
    const RoutingRows routing = reader.ReadRouting(begin, count);
    const std::vector<int32_t> doc = reader.ReadTokenDocs(begin, count);
    for (int64_t t = 0; t < count; ++t) {
      if (doc[t] < 0 || doc[t] >= documents)
        Fail(info.path + ":" + trace::ds::kTokenDoc,
             "row " + std::to_string(begin + t) + " names a document outside the trace");
      s.AddToken(reader.doc_domains()[static_cast<size_t>(doc[t])],
                 routing.ids.data() + t * per_token, routing.weights.data() + t * per_token,
                 info.top_k);
    }
  }
  return s;
}

}  // namespace moe
