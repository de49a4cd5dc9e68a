// moescope score: negative log-likelihood and perplexity of texts.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "core/text_scoring.h"

namespace moe::cli {
namespace {

struct ScoreOptions {
  ModelOptions model;
  std::vector<std::string> texts;
  std::string file;
  PolicySource policy;
};

void Run(const ScoreOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  std::vector<Document> docs;
  for (size_t i = 0; i < o.texts.size(); ++i)
    docs.push_back({"text" + std::to_string(i), o.texts[i]});
  if (!o.file.empty()) {
    std::vector<Document> more = ReadDocuments(o.file);
    docs.insert(docs.end(), more.begin(), more.end());
  }
  if (docs.empty()) Fail("score", "nothing to score: give --text TEXT or --file FILE");
  const RoutingPolicy policy = MakePolicy(o.policy, m.config());
  double total_nll = 0;
  int64_t total_tokens = 0;
  for (const Document& d : docs) {
    const TextScore s =
        ScoreText(*m.model, m.RequireTokenizer(), d.text, policy.empty() ? nullptr : &policy);
    std::printf("%-24s tokens %6lld  nll %.4f  ppl %.3f\n", d.id.c_str(),
                static_cast<long long>(s.scored_tokens), s.mean_nll(), s.perplexity());
    total_nll += s.total_nll;
    total_tokens += s.scored_tokens;
  }
  if (docs.size() > 1 && total_tokens > 0)
    std::printf("%-24s tokens %6lld  nll %.4f  ppl %.3f\n", "all",
                static_cast<long long>(total_tokens), total_nll / total_tokens,
                std::exp(total_nll / total_tokens));
}

}  // namespace

void RegisterScore(CLI::App& app) {
  auto o = std::make_shared<ScoreOptions>();
  CLI::App* cmd = app.add_subcommand("score", "NLL and perplexity of texts");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("-t,--text", o->texts, "Text to score (repeatable)");
  cmd->add_option("-f,--file", o->file,
                  "Plain text file (one document) or JSONL with a \"text\" field per line");
  AddPolicyOptions(*cmd, o->policy);
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
