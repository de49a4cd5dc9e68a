// moescope answer: extractive question answering with a ForQuestionAnswering checkpoint.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/heads.h"

namespace moe::cli {
namespace {

struct AnswerOptions {
  ModelOptions model;
  std::string question, context;
  int max_answer_tokens = 30;
};

void Run(const AnswerOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  const ModelConfig& c = m.config();
  if (c.architecture != Architecture::kQuestionAnswering)
    Fail((m.dir / "config.json").string(), "architectures names a " +
                                               std::string(ArchitectureName(c.architecture)) +
                                               " model; answer needs LlamaMoEForQuestionAnswering");
  if (o.question.empty() || o.context.empty()) Fail("answer", "give both --question and --context");
  const Tokenizer& tok = m.RequireTokenizer();
  // Input = BOS question context; the answer is searched in the context tokens only.
  std::vector<int32_t> ids = tok.Encode(o.question);
  const int64_t first = static_cast<int64_t>(ids.size());
  const std::vector<int32_t> context = tok.Encode(o.context, /*add_bos=*/false);
  ids.insert(ids.end(), context.begin(), context.end());
  const Batch batch = Batch::Single(ids);
  const QuestionAnswering qa = AnswerLogits(*m.model, batch, m.model->Forward(batch));
  const AnswerSpan span = BestSpan(qa.start_logits.data(), qa.end_logits.data(), first,
                                   static_cast<int64_t>(ids.size()) - 1, o.max_answer_tokens);
  const std::vector<int32_t> answer(ids.begin() + span.start, ids.begin() + span.end + 1);
  std::printf("%s\n", tok.Decode(answer).c_str());
  std::fprintf(stderr, "tokens %lld..%lld, score %.4f\n", static_cast<long long>(span.start),
               static_cast<long long>(span.end), span.score);
}

}  // namespace

void RegisterAnswer(CLI::App& app) {
  auto o = std::make_shared<AnswerOptions>();
  CLI::App* cmd = app.add_subcommand("answer", "Extract the answer to a question from a context");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("-q,--question", o->question, "The question")->required();
  cmd->add_option("-c,--context", o->context, "The passage holding the answer")->required();
  cmd->add_option("--max-answer-tokens", o->max_answer_tokens, "Longest answer span");
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
