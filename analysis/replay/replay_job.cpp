#include "analysis/replay/replay_job.h"

#include "analysis/corpus/trace_corpus.h"
#include "core/error.h"

namespace moe {

ReplayResult RunReplayJob(const LoadedModel& m, const ReplayJob& job) {
  const ModelConfig& c = m.config();
  if (job.routes.routes.empty() && !job.precision && job.export_routes.empty())
    Fail("replay", "nothing to do: give --routes, --precision or --export-routes");
  if (!job.trace.empty() && !job.run.corpus_files.empty())
    Fail("replay", "give corpus files or a trace, not both");
  if (job.trace.empty() && job.run.corpus_files.empty())
    Fail("replay", "nothing to run over: give corpus files (--corpus) or a trace (--trace)");
  if (!job.routes.token_ids.empty() && job.routes.routes.empty())
    Fail("--token-ids", "is given without --routes");
  if (!job.output.empty() && job.output.extension() != ".csv")
    Fail(job.output.string(), "the report is a CSV file; name it .csv");
  const Corpus corpus =
      job.trace.empty() ? ReadCorpus(std::vector<std::filesystem::path>(
                                         job.run.corpus_files.begin(), job.run.corpus_files.end()),
                                     m.tokenizer.get(), c.vocab_size, CorpusOptionsOf(job.run))
                        : CorpusFromTrace(job.trace, c.vocab_size, CorpusOptionsOf(job.run));
  if (corpus.documents.empty()) Fail("corpus", "has no documents");

  ReplayResult result;
  if (!job.export_routes.empty())
    WriteRoutes(job.export_routes, RecordOwnRoutes(*m.model, corpus, job.audit), corpus, c);
  if (!job.routes.routes.empty()) {
    const RouteTable table = ImportRoutes(job.routes, corpus, c);
    result.audits.push_back(AuditImportedRoutes(*m.model, corpus, table, job.audit));
  }
  if (job.precision) result.audits.push_back(AuditPrecision(*m.model, corpus, job.audit));
  for (const RouteAudit& a : result.audits) result.report += FormatRouteAudit(a) + "\n";
  if (!job.output.empty()) WriteRouteAuditCsv(job.output.string(), result.audits);
  return result;
}

}  // namespace moe
