#include "analysis/run/trace_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "analysis/common/progress_bar.h"
#include "analysis/run/window_runner.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/trace_load.h"
#include "analysis/trace/trace_chunk_builder.h"
#include "analysis/trace/trace_reader.h"
#include "analysis/trace/trace_writer.h"
#include "core/error.h"

namespace moe {
namespace {

// Whether token `token` of document `doc` is in the router-logit sample. A hash rather than a
// random stream, so a resumed run and a rerun pick the same tokens.
bool InLogitSample(int64_t doc, int64_t token, double rate) {
  if (rate >= 1.0) return true;
  const uint64_t h = MixHash((static_cast<uint64_t>(doc) << 32) ^ static_cast<uint64_t>(token));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < rate;
}

TraceRunSettings ResolveSettings(const TraceOptions& o, const ModelConfig& c) {
  TraceRunSettings run = o.run;
  run.windows = run.windows.Resolved(c.context_length());
  if (!run.record_logits) run.logit_sample_rate = 0;
  if (run.record_logits && !(run.logit_sample_rate > 0 && run.logit_sample_rate <= 1))
    Fail("--logit-sample-rate", "must be in (0, 1], got " + std::to_string(run.logit_sample_rate));
  if (o.batch_size < 1) Fail("--batch-size", "must be at least 1");
  return run;
}

// The writer of a new trace, or of an interrupted one continued after its committed prefix
// (null when that trace is already complete), and the statistics of what it already holds.
struct OpenedTrace {
  std::unique_ptr<TraceWriter> writer;
  ExpertStats stats;
};

OpenedTrace OpenTrace(const TraceOptions& o, const TraceHeader& header, const Corpus& corpus,
                      TraceSummary& summary) {
  OpenedTrace t{nullptr, ExpertStats(static_cast<int>(corpus.domains.size()), header.num_layers,
                                     header.num_experts)};
  if (!o.resume) {
    t.writer = TraceWriter::Create(o.output, header, o.queue_chunks);
    return t;
  }
  {
    const TraceReader existing(o.output);
    CheckResumable(existing.info(), existing.domains(), header);
    summary.resumed_documents = existing.num_documents();
    summary.resumed_tokens = existing.num_tokens();
    if (existing.info().complete) return t;
    t.stats = ComputeDomainLoad(existing);  // exact for the committed prefix, unlike /stats
  }
  t.writer = TraceWriter::Resume(o.output, o.queue_chunks);
  const int64_t done = t.writer->initial_documents();
  if (done > static_cast<int64_t>(corpus.documents.size()))
    Fail(summary.output, "cannot resume: it holds more documents than the corpus");
  int64_t tokens = 0;
  for (int64_t d = 0; d < done; ++d)
    tokens += static_cast<int64_t>(corpus.documents[static_cast<size_t>(d)].ids.size());
  if (tokens != t.writer->initial_tokens())
    Fail(summary.output, "cannot resume: its " + std::to_string(done) + " documents hold " +
                             std::to_string(t.writer->initial_tokens()) + " tokens, the corpus's " +
                             std::to_string(tokens));
  return t;
}

// Hands the recorded rows of each window to the builder in document order, choosing the tokens
// whose logits are kept; returns the number of tokens added.
int64_t AddWindows(std::span<const TraceWindow> windows, const std::vector<WindowResult>& results,
                   const Corpus& corpus, const TraceRunSettings& run, int64_t document_base,
                   TraceChunkBuilder& builder) {
  const size_t routed = builder.routing_width(), logit_width = builder.logit_width();
  const size_t run_layers = routed / static_cast<size_t>(builder.kmax());
  int64_t added = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    const TraceWindow& w = windows[i];
    const WindowResult& r = results[i];
    const std::vector<int32_t>& ids = corpus.documents[static_cast<size_t>(w.doc)].ids;
    for (int64_t j = 0; j < w.end - w.record_begin; ++j) {
      const int64_t token = w.record_begin + j;
      const bool sampled = run.record_logits && InLogitSample(w.doc + document_base, token, run.logit_sample_rate);
      builder.AddToken(w.doc, ids[static_cast<size_t>(token)], r.position[j], r.nll[j],
                       r.predicted[j], r.topk_ids.data() + j * routed,
                       r.topk_weights.data() + j * routed,
                       sampled ? r.logits.data() + j * logit_width : nullptr,
                       r.shared_gate.empty() ? nullptr : r.shared_gate.data() + j * run_layers);
    }
    added += w.end - w.record_begin;
    if (w.last) builder.EndDocument(w.doc);
  }
  return added;
}

}  // namespace

TraceSummary RunTrace(const LoadedModel& m, const RoutingPolicy& policy, const TraceOptions& o) {
  const ModelConfig& c = m.config();
  if (!c.is_moe)
    Fail(m.dir.string(), "is a dense LLaMA without routers; there is no routing to trace");
  const TraceRunSettings run = ResolveSettings(o, c);
  policy.Validate(c);
  const Corpus whole = ReadCorpus(
      std::vector<std::filesystem::path>(run.corpus_files.begin(), run.corpus_files.end()),
      m.tokenizer.get(), c.vocab_size, CorpusOptionsOf(run));
  if (whole.documents.empty())
    Fail("corpus", "has no documents to trace (" + std::to_string(whole.skipped.size()) +
                       " skipped as empty)");
  if (whole.documents.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    Fail("corpus", "has more documents than a trace indexes (2^31 - 1)");
  TraceHeader header = MakeTraceHeader(m, policy, whole, run);
  // A shard traces documents [document_base, ...) of the whole corpus as a corpus of its own.
  Corpus shard;
  int64_t document_base = 0;
  if (o.select_documents) {
    const auto [begin, end] = o.select_documents(whole, header);
    if (begin < 0 || end < begin || end > static_cast<int64_t>(whole.documents.size()))
      Fail("trace", "internal error: a shard's documents lie outside the corpus");
    shard.domains = whole.domains;
    shard.documents.assign(whole.documents.begin() + begin, whole.documents.begin() + end);
    document_base = begin;
    header = ShardTraceHeader(header, shard, run, begin,
                              static_cast<int64_t>(whole.documents.size()));
  }
  const Corpus& corpus = o.select_documents ? shard : whole;
  const int L = header.num_layers, E = header.num_experts, K = header.top_k;

  TraceSummary summary;
  summary.output = o.output.string();
  summary.skipped_documents = static_cast<int64_t>(o.select_documents ? 0 : whole.skipped.size());
  OpenedTrace opened = OpenTrace(o, header, corpus, summary);
  if (!opened.writer) {
    summary.documents = summary.resumed_documents;
    summary.tokens = summary.resumed_tokens;
    summary.already_complete = true;
    return summary;
  }
  TraceWriter& writer = *opened.writer;
  const int64_t first_doc = writer.initial_documents();
  const std::vector<TraceWindow> windows = PlanWindows(corpus, first_doc, run.windows);

  WindowRunner runner(*m.model, policy.empty() ? nullptr : &policy, K, run.record_logits,
                      o.batch_size);
  runner.set_document_base(document_base);
  TraceChunkBuilder builder(corpus, L, K, E, std::move(opened.stats), writer.initial_tokens());
  ProgressBar bar(o.progress, static_cast<int64_t>(corpus.documents.size()), corpus.tokens(),
                  first_doc, writer.initial_tokens());
  int64_t docs_done = first_doc, tokens_done = writer.initial_tokens();
  int64_t tokens_run = tokens_done, uncommitted = 0;  // run by the model; not yet committed
  auto last_commit = std::chrono::steady_clock::now();
  auto commit = [&] {
    TraceChunk chunk = builder.Take();
    docs_done += static_cast<int64_t>(chunk.doc_tokens.size());
    tokens_done += chunk.tokens();
    summary.logit_rows += static_cast<int64_t>(chunk.logit_token.size());
    writer.Append(std::move(chunk));
    uncommitted = 0;
    last_commit = std::chrono::steady_clock::now();
  };
  const size_t group = static_cast<size_t>(o.batch_size) * kBatchesPerWindowGroup;
  if (o.on_progress) o.on_progress(tokens_run, corpus.tokens());
  for (size_t first = 0; first < windows.size(); first += group) {
    if (o.stop != nullptr && o.stop->load()) {
      summary.interrupted = true;
      break;
    }
    const auto part = std::span<const TraceWindow>(windows).subspan(
        first, std::min(group, windows.size() - first));
    const int64_t added = AddWindows(part, runner.Run(part, corpus), corpus, run, document_base, builder);
    uncommitted += added;
    tokens_run += added;
    const bool due =
        uncommitted >= o.commit_tokens || std::chrono::steady_clock::now() - last_commit >=
                                              std::chrono::duration<double>(o.commit_seconds);
    if (due && builder.has_finished_documents()) commit();
    bar.Update(docs_done, tokens_run);
    if (o.on_progress) o.on_progress(tokens_run, corpus.tokens());
  }
  // Whole documents only: a document cut by the stop is not committed and runs again on resume.
  if (builder.has_finished_documents()) commit();
  if (summary.interrupted)
    writer.Close();
  else
    writer.Finish();
  bar.Update(docs_done, tokens_done);
  bar.Clear();
  summary.documents = docs_done;
  summary.tokens = tokens_done;
  summary.seconds = bar.seconds();
  summary.tokens_per_second = bar.tokens_per_second();
  return summary;
}

std::string FormatSummary(const TraceSummary& s) {
  if (s.already_complete)
    return s.output + " is already complete (" + std::to_string(s.documents) + " documents, " +
           ShortCount(static_cast<double>(s.tokens)) + " tokens); nothing to resume";
  std::string notes;
  if (s.resumed_documents > 0) notes += std::to_string(s.resumed_documents) + " resumed";
  if (s.skipped_documents > 0)
    notes += (notes.empty() ? "" : ", ") + std::to_string(s.skipped_documents) + " skipped";
  if (s.logit_rows > 0)
    notes +=
        (notes.empty() ? "" : ", ") + ShortCount(static_cast<double>(s.logit_rows)) + " logit rows";
  char rate[64];
  std::snprintf(rate, sizeof(rate), "%.1fs (%s tokens/s)", s.seconds,
                ShortCount(s.tokens_per_second).c_str());
  return "traced " + std::to_string(s.documents) + " documents" +
         (notes.empty() ? "" : " (" + notes + ")") + ", " +
         ShortCount(static_cast<double>(s.tokens)) + " tokens in " + rate + " -> " + s.output;
}

}  // namespace moe
