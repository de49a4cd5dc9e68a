#pragma once
// The root attributes of a trace, gathered from the run (model folder, policy, corpus, options),
// and the check that an interrupted trace belongs to the same run before it is resumed.
#include <string>

#include "analysis/corpus/corpus.h"
#include "analysis/trace/trace_file.h"
#include "analysis/trace/trace_reader.h"
#include "analysis/run/trace_windows.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"

namespace moe {

struct TraceRunSettings {
  std::vector<std::string> corpus_files;
  std::string default_domain;
  std::vector<std::string> only_domains;
  int64_t max_documents_per_domain = 0;  // 0 = every document
  int64_t max_tokens_per_document = 0;   // 0 = whole documents
  WindowRule windows;
  bool record_logits = false;
  double logit_sample_rate = 1.0;
};

// How the corpus reader is to read `settings`' files.
CorpusOptions CorpusOptionsOf(const TraceRunSettings& settings);

// Hashes the checkpoint and tokenizer files (SHA-256) and describes the run.
TraceHeader MakeTraceHeader(const LoadedModel& model, const RoutingPolicy& policy,
                            const Corpus& corpus, const TraceRunSettings& settings);

// The header of a shard's trace: `whole` (the run over the whole corpus) with the corpus
// attributes of `shard` alone, the documents [first_document, first_document + shard.documents)
// of the whole corpus (analysis/distributed). /docs/source_id keeps the whole corpus's width, so
// every shard of a run has the same layout.
TraceHeader ShardTraceHeader(const TraceHeader& whole, const Corpus& shard,
                             const TraceRunSettings& settings, int64_t first_document,
                             int64_t corpus_documents);

// Throws Error naming the trace and the first attribute that differs (model, checkpoint,
// tokenizer, policy, windowing, corpus, logit settings) when `existing` was not made by the run
// that `now` describes.
void CheckResumable(const TraceAttributes& existing, const std::vector<std::string>& existing_domains,
                    const TraceHeader& now);

}  // namespace moe
