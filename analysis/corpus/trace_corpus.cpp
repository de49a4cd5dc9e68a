#include "analysis/corpus/trace_corpus.h"

#include "analysis/trace/trace_reader.h"

namespace moe {

Corpus CorpusFromTrace(const std::filesystem::path& trace, int vocab_size,
                       const CorpusOptions& options) {
  const TraceReader r(trace);
  CorpusReader reader(nullptr, vocab_size, options);
  const int64_t D = r.num_documents();
  const std::vector<std::string> source_ids = r.SourceIds(0, D);
  for (int64_t d = 0; d < D; ++d) {
    const TraceDocument doc = r.Document(d);
    TokenRows tokens = r.ReadTokens(doc.token_begin, doc.tokens());
    reader.AddIds(trace.string() + ": document " + std::to_string(d),
                  source_ids[static_cast<size_t>(d)], r.domains()[static_cast<size_t>(doc.domain)],
                  std::move(tokens.id));
  }
  return reader.Finish();
}

}  // namespace moe
