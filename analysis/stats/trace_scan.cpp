#include "analysis/stats/trace_scan.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "analysis/stats/token_controlled.h"
#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {
namespace {

// The vocabulary size in the trace's stored config.json, 0 when it names none; a value that is
// not an integer in int range is an Error naming the trace, never a wrapped size.
int VocabSize(const TraceAttributes& info, const std::string& path) {
  if (info.model_config.empty()) return 0;
  const nlohmann::json config = ParseJson(info.model_config, path + " model_config");
  if (!config.is_object() || !config.contains("vocab_size")) return 0;
  return JsonIntAs<int>(config.at("vocab_size"), path, "model_config vocab_size", 1);
}

}  // namespace

TraceSetInfo InspectTraces(const std::vector<std::filesystem::path>& paths,
                           size_t max_vocab_bytes) {
  if (paths.empty()) Fail("stats", "no trace given");
  TraceSetInfo set;
  std::string checkpoint, first;
  for (const std::filesystem::path& path : paths) {
    const TraceReader reader(path);
    const TraceAttributes& i = reader.info();
    set.paths.push_back(path.string());
    if (set.paths.size() == 1) {
      first = path.string();
      set.model_path = i.model_path;
      set.shape.layers = i.num_layers;
      set.shape.experts = i.num_experts;
      set.shape.moe_layers = i.moe_layers;
      checkpoint = i.checkpoint_sha256;
    } else {
      auto differs = [&](const char* field, const std::string& a, const std::string& b) {
        if (a != b)
          Fail(path.string(), std::string("attribute ") + field + " is " + b + ", " + first +
                                  " has " + a + "; statistics merge traces of one model only");
      };
      differs("num_layers", std::to_string(set.shape.layers), std::to_string(i.num_layers));
      differs("num_experts", std::to_string(set.shape.experts), std::to_string(i.num_experts));
      differs("checkpoint_sha256", checkpoint, i.checkpoint_sha256);
    }
    set.shape.top_k = std::max(set.shape.top_k, i.top_k);
    set.shape.vocab = std::max(set.shape.vocab, VocabSize(i, path.string()));
    if (!i.complete) set.incomplete.push_back(path.string());
    std::vector<int16_t> map;
    for (const std::string& name : reader.domains()) {
      auto at = std::find(set.domains.begin(), set.domains.end(), name);
      if (at == set.domains.end()) at = set.domains.insert(set.domains.end(), name);
      map.push_back(static_cast<int16_t>(at - set.domains.begin()));
    }
    for (int16_t m : reader.doc_domains()) set.doc_domains.push_back(map[static_cast<size_t>(m)]);
    set.trace_documents.push_back(reader.num_documents());
    set.trace_tokens.push_back(reader.num_tokens());
    set.documents += reader.num_documents();
    set.tokens += reader.num_tokens();
    set.logit_rows += reader.num_logit_rows();
    if (!reader.has_predictions() && set.predictions) {
      set.predictions = false;
      set.predictions_note = (paths.size() == 1 ? std::string("the trace") : path.string()) +
                             " has no " + trace::ds::kTokenPredicted +
                             " (written by an older moescope)";
    }
  }
  if (set.documents == 0)
    Fail(set.paths.size() == 1 ? set.paths[0] : std::string("traces"),
         std::string(set.paths.size() == 1 ? "has" : "have") +
             " no committed documents; there is nothing to compute statistics over");
  set.shape.domains = static_cast<int>(set.domains.size());
  const size_t tables = set.predictions ? 3 : 2;
  const size_t vocab_bytes = tables * set.shape.layers * set.shape.vocab * set.shape.experts * 4;
  if (set.shape.vocab == 0) {
    set.vocabulary_note = "the model config has no vocab_size";
  } else if (vocab_bytes > max_vocab_bytes) {
    set.vocabulary_note = "token x expert tables would take " + std::to_string(vocab_bytes >> 20) +
                          " MiB, more than the cap";
    set.shape.vocab = 0;
  }
  return set;
}

void ScanTraces(const TraceSetInfo& set, TokenSink& acc, const TraceStatsRun& run) {
  const int L = set.shape.layers, E = set.shape.experts;
  if (set.trace_documents.size() != set.paths.size() || set.trace_tokens.size() != set.paths.size())
    Fail("stats", "internal error: the trace set was not made by InspectTraces");
  int64_t doc_base = 0, done = 0;
  for (size_t i = 0; i < set.paths.size(); ++i) {
    const std::string& path = set.paths[i];
    const TraceReader reader(path);
    // The prefix InspectTraces saw; a trace being written may have committed more since.
    const int64_t docs_in = set.trace_documents[i], tokens_all = set.trace_tokens[i];
    if (reader.num_documents() < docs_in || reader.num_tokens() < tokens_all)
      Fail(path, "has fewer committed documents than when it was inspected; was it rewritten?");
    // The documents [lo, docs) of this trace in the range asked for (all of them by default).
    const int64_t end = run.end_document < 0 ? INT64_MAX : run.end_document;
    const int64_t lo = std::clamp<int64_t>(run.first_document - doc_base, 0, docs_in);
    const int64_t docs = std::clamp<int64_t>(end - doc_base, lo, docs_in);
    if (lo >= docs) {
      doc_base += docs_in;
      continue;
    }
    const int64_t tokens_in = reader.doc_offsets()[static_cast<size_t>(docs)];
    const int K = reader.info().top_k;
    const size_t routed = static_cast<size_t>(L) * K, logit_width = static_cast<size_t>(L) * E;
    const int64_t per_row = static_cast<int64_t>(20 + routed * 6);
    const int64_t block = std::max<int64_t>(1024, run.block_bytes / per_row);
    const std::span<const int64_t> logit_tokens = reader.logit_tokens();
    std::vector<int16_t> map;  // this trace's domain index -> global
    for (const std::string& name : reader.domains())
      map.push_back(static_cast<int16_t>(std::find(set.domains.begin(), set.domains.end(), name) -
                                         set.domains.begin()));
    int64_t open_doc = lo - 1;
    for (int64_t begin = reader.doc_offsets()[static_cast<size_t>(lo)]; begin < tokens_in;
         begin += block) {
      const int64_t count = std::min(block, tokens_in - begin);
      const TokenRows tokens = reader.ReadTokens(begin, count);
      const RoutingRows routing = reader.ReadRouting(begin, count);
      LogitRows logits;
      int64_t next_logit = 0;
      if (reader.info().record_logits) {
        const int64_t r0 = std::lower_bound(logit_tokens.begin(), logit_tokens.end(), begin) -
                           logit_tokens.begin();
        const int64_t r1 =
            std::lower_bound(logit_tokens.begin(), logit_tokens.end(), begin + count) -
            logit_tokens.begin();
        logits = reader.ReadRouterLogits(r0, r1 - r0);
      }
      for (int64_t t = 0; t < count; ++t) {
        const int64_t doc = tokens.doc[t];
        if (doc != open_doc) {
          if (doc < open_doc || doc >= docs || reader.Document(doc).token_begin != begin + t)
            Fail(path, "/tokens/doc row " + std::to_string(begin + t) +
                           " does not follow /docs/offset; damaged trace");
          if (open_doc >= lo) acc.EndDocument();
          // Documents without tokens (none in traces moescope writes) still count as documents.
          for (int64_t empty = open_doc + 1; empty < doc; ++empty) {
            acc.BeginDocument(doc_base + empty, map[reader.doc_domains()[empty]]);
            acc.EndDocument();
          }
          open_doc = doc;
          acc.BeginDocument(doc_base + doc, map[static_cast<size_t>(reader.doc_domains()[doc])]);
        }
        const float* token_logits = nullptr;
        if (next_logit < logits.count && logits.token[next_logit] == begin + t)
          token_logits = logits.logits.data() + logit_width * next_logit++;
        acc.AddToken(tokens.id[t], routing.ids.data() + routed * t,
                     routing.weights.data() + routed * t, K, token_logits,
                     tokens.predicted.empty() ? -1 : tokens.predicted[t]);
      }
      done += count;
      if (run.progress) run.progress(done, set.tokens);
    }
    if (open_doc >= lo) acc.EndDocument();
    for (int64_t empty = open_doc + 1; empty < docs; ++empty) {
      acc.BeginDocument(doc_base + empty, map[reader.doc_domains()[empty]]);
      acc.EndDocument();
    }
    doc_base += docs_in;
  }
}

RoutingAccumulator AccumulateTraces(const TraceSetInfo& set, const StatsOptions& options,
                                    const TraceStatsRun& run) {
  StatsOptions opt = options;
  if (set.shape.vocab == 0) opt.vocabulary = false;
  if (!set.predictions) opt.vocab_predicted = false;
  RoutingAccumulator acc(set.shape, opt,
                         opt.permutations != 0 ? set.doc_domains : std::vector<int16_t>{});
  ScanTraces(set, acc, run);
  return acc;
}

StatsReport ComputeStatsReport(const TraceSetInfo& set, const StatsOptions& options,
                               const TraceStatsRun& run) {
  const bool two_passes = options.vocabulary && set.shape.vocab > 0;
  const int64_t total = set.tokens * (two_passes ? 2 : 1);
  TraceStatsRun first = run, second = run;
  if (run.progress) {
    first.progress = [&](int64_t done, int64_t) { run.progress(done, total); };
    second.progress = [&](int64_t done, int64_t) { run.progress(set.tokens + done, total); };
  }
  RoutingAccumulator acc = AccumulateTraces(set, options, first);
  if (run.reduce_first) run.reduce_first(acc);
  if (acc.vocab_input().empty()) return BuildStatsReport(acc, set.domains);
  TokenControlledPass token_controlled(acc);
  ScanTraces(set, token_controlled, second);
  if (run.reduce_second) run.reduce_second(token_controlled);
  return BuildStatsReport(acc, set.domains, &token_controlled);
}

}  // namespace moe
