// moescope score: negative log-likelihood and perplexity of texts and corpus files, per
// document, per domain and overall; batched like a trace (analysis/run/corpus_scoring.h).
#include <cmath>
#include <cstdio>
#include <map>

#include "analysis/run/corpus_scoring.h"
#include "cli/common.h"
#include "core/error.h"

namespace moe::cli {
namespace {

struct ScoreOptions {
  ModelOptions model;
  std::vector<std::string> texts;
  std::vector<std::string> files;
  std::string domain = "text";
  int batch_size = 8;
  PolicySource policy;
};

void PrintRow(const std::string& name, double nll, int64_t tokens) {
  const double mean = tokens ? nll / static_cast<double>(tokens) : 0.0;
  std::printf("%-32s tokens %7lld  nll %.4f  ppl %.3f\n", name.c_str(),
              static_cast<long long>(tokens), mean, std::exp(mean));
}

void Run(const ScoreOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  const ModelConfig& c = m.config();
  CorpusReader reader(m.tokenizer.get(), c.vocab_size, {o.domain, {}});
  for (size_t i = 0; i < o.texts.size(); ++i)
    reader.AddText("--text " + std::to_string(i + 1), "text" + std::to_string(i), o.domain,
                   o.texts[i]);
  for (const std::string& f : o.files) reader.Read(f);
  const Corpus corpus = reader.Finish();
  if (corpus.documents.empty())
    Fail("score", "nothing to score: give --text TEXT or --file FILE (blank texts are skipped)");
  for (const std::string& why : corpus.skipped) std::fprintf(stderr, "skipped %s\n", why.c_str());
  const RoutingPolicy policy = MakePolicy(o.policy, c);
  const CorpusScore s = ScoreCorpus(*m.model, corpus,
                                    {.windows = {c.context_length(), c.context_length()},
                                     .batch_size = o.batch_size,
                                     .policy = policy.empty() ? nullptr : &policy});
  std::map<int16_t, DocumentScore> by_domain;
  DocumentScore all;
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    const DocumentScore& x = s.documents[d];
    PrintRow(corpus.documents[d].source_id, x.total_nll, x.predicted);
    for (DocumentScore* sum : {&by_domain[corpus.documents[d].domain], &all}) {
      sum->total_nll += x.total_nll;
      sum->predicted += x.predicted;
    }
  }
  if (by_domain.size() > 1)
    for (const auto& [domain, x] : by_domain)
      PrintRow("domain " + corpus.domains[static_cast<size_t>(domain)], x.total_nll, x.predicted);
  if (corpus.documents.size() > 1) PrintRow("all", all.total_nll, all.predicted);
  std::fprintf(stderr, "scored %zu documents, %lld tokens in %.2f s (%.0f tokens/s)\n",
               corpus.documents.size(), static_cast<long long>(s.tokens), s.seconds,
               static_cast<double>(s.tokens) / std::max(s.seconds, 1e-9));
}

}  // namespace

void RegisterScore(CLI::App& app) {
  auto o = std::make_shared<ScoreOptions>();
  CLI::App* cmd = app.add_subcommand("score", "NLL and perplexity of texts and corpus files");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("-t,--text", o->texts, "Text to score (repeatable)");
  cmd->add_option("-f,--file", o->files,
                  "Corpus files: JSONL (\"text\" or \"input_ids\", optional \"id\", \"domain\") "
                  "or plain text (one document each); repeatable");
  cmd->add_option("--domain", o->domain, "Domain of texts and plain files")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  AddPolicyOptions(*cmd, o->policy);
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
