// moescope prune: a checkpoint with fewer experts, removed (or merged) by an importance score and
// a ratio; moescope prune-curve: ΔNLL per domain of pruning by each score at each ratio against
// random pruning, the removed experts disabled with reroute semantics. The logic lives in
// analysis/prune/ (prune_plan.h, prune_checkpoint.h) and analysis/ablation/ablation.h.
#include <unistd.h>

#include <iostream>

#include "analysis/prune/importance_file.h"
#include "analysis/prune/prune_checkpoint.h"
#include "analysis/prune/prune_curve.h"
#include "cli/common.h"
#include "core/error.h"

namespace moe::cli {
namespace {

struct PruneCommandOptions {
  std::string model_dir, importance, score, output;
  double ratio = 0;
  bool global = false, per_layer = false, merge = false;
  uint64_t seed = 0;
};

void RunPrune(const PruneCommandOptions& o) {
  const ExpertImportance imp = ReadImportance(o.importance);
  const PruneRequest request{ParsePruneCriterion(o.score, "--score"), o.ratio, o.global, o.seed};
  const PrunePlan plan = PlanPruning(imp, request);
  const PruneWriteResult r =
      WritePrunedCheckpoint(o.model_dir, plan, o.output, {o.merge, imp.routed});
  std::cout << (o.merge ? "merged " : "removed ") << plan.RemovedCount() << " experts by "
            << request.criterion.Name() << ": " << r.count_key << " " << r.experts_before << " -> "
            << r.experts_after << " (k = " << r.top_k << "), written to " << o.output << "\n";
  for (const MergeAssignment& m : r.merges)
    std::cout << "  layer " << m.layer << ": expert " << m.removed << " -> " << m.into
              << " (router cosine " << m.similarity << ")\n";
  if (!o.merge && !r.equals_reroute)
    std::cout << "note: this router's softmax runs over all experts without renormalization, so "
                 "the pruned model's weights differ from the reroute evaluation of prune-curve\n";
}

struct CurveCommandOptions {
  ModelOptions model;
  PruneCurveOptions curve;
  std::string importance;
  std::vector<std::string> scores = {"frequency", "mean_gate", "reap", "max_activation",
                                     "output_change"};
};

void RunCurve(CurveCommandOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  const ExpertImportance imp = ReadImportance(o.importance);
  for (const std::string& s : o.scores)
    o.curve.criteria.push_back(ParsePruneCriterion(s, "--scores"));
  o.curve.ablation.progress = ::isatty(STDERR_FILENO) == 1;
  const StopOnSignals signals;
  o.curve.ablation.pass.stop = signals.stop();
  const PruneCurveSummary s = RunPruneCurve(m, imp, o.curve);
  std::cout << FormatAblationTable(s.ablation) << "\n"
            << FormatPruneComparison(s.comparison, s.ablation.domains);
  std::cerr << FormatAblationSummary(s.ablation) << "\n";
  if (!s.comparison_csv.empty()) std::cerr << "wrote " << s.comparison_csv << "\n";
  if (s.ablation.interrupted) g_exit_code = 130;
}

}  // namespace

void RegisterPrune(CLI::App& app) {
  auto o = std::make_shared<PruneCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "prune", "Write a checkpoint with fewer experts, removed or merged by an importance score");
  cmd->add_option("model", o->model_dir, "Model folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--importance", o->importance, "Importance file of `moescope importance`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--score", o->score,
                  "frequency | mean_gate | reap | max_activation | output_change | random "
                  "(the lowest-scoring experts go)")
      ->required();
  cmd->add_option("--ratio", o->ratio, "Share of experts removed, in (0, 1)")->required();
  CLI::Option* global = cmd->add_flag("--global", o->global,
                                      "Rank all layers' experts together (default: --per-layer)");
  cmd->add_flag("--per-layer", o->per_layer, "Remove the ratio from every layer (the default)")
      ->excludes(global);
  cmd->add_flag("--merge", o->merge,
                "Fold each removed expert into its most similar kept expert (router cosine), "
                "frequency-weighted");
  cmd->add_option("--seed", o->seed, "Seed of --score random")->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Folder of the pruned checkpoint")->required();
  cmd->callback([o] { g_exit_code = Guarded([&] { RunPrune(*o); }); });
}

void RegisterPruneCurve(CLI::App& app) {
  auto o = std::make_shared<CurveCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "prune-curve",
      "ΔNLL per domain of pruning by each score at each ratio, against random pruning");
  AddModelOptions(*cmd, o->model);
  AddCorpusOptions(*cmd, o->curve.ablation.run)->required();
  cmd->add_option("--importance", o->importance, "Importance file of `moescope importance`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--scores", o->scores, "Scores to prune by")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ratios", o->curve.ratios, "Shares of experts removed")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--global", o->curve.global, "Rank all layers' experts together");
  cmd->add_option("--random-controls", o->curve.controls,
                  "Random prunings of the same size per layer for each score and ratio")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-o,--output", o->curve.ablation.output,
                  "Results file (HDF5, the format of moescope ablate); the CSV goes beside it")
      ->required();
  cmd->add_option("--batch-size", o->curve.ablation.pass.batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", o->curve.ablation.pass.bootstrap,
                  "Bootstrap replicates over documents (0 = no intervals)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->curve.ablation.pass.seed,
                  "Seed of the bootstrap and random controls")
      ->capture_default_str();
  cmd->add_flag("--resume", o->curve.ablation.resume, "Continue an interrupted curve at --output");
  cmd->callback([o] { g_exit_code = Guarded([&] { RunCurve(*o); }); });
}

}  // namespace moe::cli
