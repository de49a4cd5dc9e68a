// moescope importance: expert importance scores (frequency, mean gate weight, REAP, max
// activation, NAEE output change) per layer and expert over a corpus, with intervals over
// documents; the logic lives in analysis/prune/expert_importance.h.
#include <unistd.h>

#include <iostream>

#include "analysis/common/progress_bar.h"
#include "analysis/prune/importance_file.h"
#include "cli/common.h"

namespace moe::cli {
namespace {

struct ImportanceCommandOptions {
  ModelOptions model;
  TraceRunSettings run;
  ImportanceOptions importance;
  std::string output, show = "reap";
};

void Run(ImportanceCommandOptions& o) {
  const ImportanceScore shown = ParseImportanceScore(o.show, "--show");
  const LoadedModel m = OpenModel(o.model);
  const Corpus corpus = ReadCorpus(
      std::vector<std::filesystem::path>(o.run.corpus_files.begin(), o.run.corpus_files.end()),
      m.tokenizer.get(), m.config().vocab_size, CorpusOptionsOf(o.run));
  o.importance.windows = o.run.windows;
  const StopOnSignals signals;
  o.importance.stop = signals.stop();
  std::unique_ptr<ProgressBar> bar;
  o.importance.on_progress = [&](int64_t windows, int64_t total_windows, int64_t tokens,
                                 int64_t total_tokens) {
    if (!bar) {
      bar =
          std::make_unique<ProgressBar>(::isatty(STDERR_FILENO) == 1, total_windows, total_tokens);
      bar->SetItemsName("windows");
    }
    bar->Update(windows, tokens);
  };
  ExpertImportance r = MeasureExpertImportance(*m.model, corpus, o.importance);
  if (bar) bar->Clear();
  r.model = m.dir.string();
  WriteImportance(o.output, r);
  std::cout << FormatImportanceTable(r, shown);
  std::cerr << "wrote " << o.output << " and " << o.output << ".csv\n";
}

}  // namespace

void RegisterImportance(CLI::App& app) {
  auto o = std::make_shared<ImportanceCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "importance",
      "Expert importance scores over a corpus (frequency, mean gate, REAP, max activation, "
      "output change), per layer and expert, with intervals over documents");
  AddModelOptions(*cmd, o->model);
  AddCorpusOptions(*cmd, o->run)->required();
  cmd->add_option("-o,--output", o->output, "Importance file (JSON); the CSV goes beside it")
      ->required();
  cmd->add_flag("!--no-output-change", o->importance.output_change,
                "Skip the NAEE output-change score (the one that reruns MoE blocks)");
  cmd->add_option("--show", o->show, "Score printed as a table")->capture_default_str();
  cmd->add_option("--batch-size", o->importance.batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", o->importance.bootstrap,
                  "Bootstrap replicates over documents (0 = no intervals)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->importance.seed, "Seed of the bootstrap")->capture_default_str();
  cmd->add_option("--ci-level", o->importance.ci_level, "Confidence level")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
