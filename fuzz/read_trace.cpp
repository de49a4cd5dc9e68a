#include "fuzz/read_trace.h"

#include <algorithm>
#include <cstdint>

#include "analysis/trace/trace_reader.h"

namespace moe::fuzz {

void ReadWholeTrace(const std::filesystem::path& path) {
  // Rows per read, as the statistics pass reads them: bounded memory for any committed size.
  constexpr int64_t kChunk = 256;
  const TraceReader reader(path);
  for (int64_t d = 0; d < reader.num_documents(); ++d) reader.Document(d);
  reader.SourceIds(0, reader.num_documents());
  for (int64_t row = 0; row < reader.num_tokens(); row += kChunk) {
    const int64_t count = std::min(kChunk, reader.num_tokens() - row);
    reader.ReadTokens(row, count);
    reader.ReadRouting(row, count);
    reader.ReadTokenDocs(row, count);
  }
  for (int64_t row = 0; row < reader.num_logit_rows(); row += kChunk)
    reader.ReadRouterLogits(row, std::min(kChunk, reader.num_logit_rows() - row));
  reader.ReadStats();
}

}  // namespace moe::fuzz
