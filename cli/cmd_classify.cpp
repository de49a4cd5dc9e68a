// moescope classify: sequence classification with a ForSequenceClassification checkpoint.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/heads.h"

namespace moe::cli {
namespace {

struct ClassifyOptions {
  ModelOptions model;
  std::vector<std::string> texts;
};

void Run(const ClassifyOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  const ModelConfig& c = m.config();
  if (c.architecture != Architecture::kSequenceClassification)
    Fail((m.dir / "config.json").string(),
         "architectures names a " + std::string(ArchitectureName(c.architecture)) +
             " model; classify needs LlamaMoEForSequenceClassification");
  if (o.texts.empty()) Fail("classify", "give at least one --text");
  for (const std::string& text : o.texts) {
    if (text.empty()) Fail("classify", "a --text is empty");
    const Batch batch = Batch::Single(m.RequireTokenizer().Encode(text));
    const SequenceClassification r = ClassifySequences(*m.model, batch, m.model->Forward(batch));
    const int best =
        static_cast<int>(std::max_element(r.logits.begin(), r.logits.end()) - r.logits.begin());
    std::printf("%s\t", c.labels[best].c_str());
    for (int i = 0; i < c.num_labels; ++i)
      std::printf("%s=%.4f%s", c.labels[i].c_str(), r.logits[i], i + 1 < c.num_labels ? " " : "");
    std::printf("\t%s\n", text.c_str());
  }
}

}  // namespace

void RegisterClassify(CLI::App& app) {
  auto o = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = app.add_subcommand("classify", "Label texts with a sequence-classification head");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("-t,--text", o->texts, "Text to classify (repeatable)")->required();
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
