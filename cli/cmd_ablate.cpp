// moescope ablate: switch experts off (or change k) and measure what breaks: ΔNLL per domain,
// KL to the baseline, top-1 agreement, with bootstrap intervals; the logic lives in
// analysis/ablation/ablation.h. Ctrl-C or SIGTERM stops after the current batch; --resume
// continues.
#include <unistd.h>

#include <iostream>

#include "analysis/ablation/ablation.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "cli/common.h"
#include "core/error.h"
#ifdef MOESCOPE_WITH_MPI
#include "analysis/distributed/mpi_ablate.h"
#endif

namespace moe::cli {
namespace {

struct AblateCommandOptions {
  ModelOptions model;
  AblationOptions ablation;
  SweepRequest sweep;
  std::string mode = "reroute";
};

#ifdef MOESCOPE_WITH_MPI
// Under mpirun: documents are handed out to the ranks, rank 0 writes the one results file
// (analysis/distributed/mpi_ablate.h).
void RunDistributed(AblateCommandOptions& o) {
  const distributed::MpiSession mpi;
  const StopOnSignals signals;
  auto open = [&] {
    distributed::AblationJob job{OpenModel(o.model), {}};
    o.sweep.mode = ParseDisableMode(o.mode, "--mode");
    o.sweep.seed = o.ablation.pass.seed;
    job.policies = BuildSweep(o.sweep, job.model.config());
    return job;
  };
  g_exit_code =
      distributed::RunDistributedAblation(mpi, open, o.ablation, g_command_line, signals.stop(),
                                          ::isatty(STDERR_FILENO) == 1, std::cout, std::cerr);
}
#endif

void Run(AblateCommandOptions& o) {
#ifdef MOESCOPE_WITH_MPI
  if (LaunchedRanks() > 0) return RunDistributed(o);
#else
  LaunchedRanks();  // refuses several processes started by mpirun
#endif
  const LoadedModel m = OpenModel(o.model);
  o.sweep.mode = ParseDisableMode(o.mode, "--mode");
  o.sweep.seed = o.ablation.pass.seed;
  const std::vector<AblationPolicy> policies = BuildSweep(o.sweep, m.config());
  o.ablation.progress = ::isatty(STDERR_FILENO) == 1;
  const StopOnSignals signals;
  o.ablation.pass.stop = signals.stop();
  const AblationSummary summary = RunAblation(m, policies, o.ablation);
  std::cout << FormatAblationTable(summary);
  std::cerr << FormatAblationSummary(summary) << "\n";
  if (summary.interrupted) g_exit_code = 130;
}

}  // namespace

void RegisterAblate(CLI::App& app) {
  auto o = std::make_shared<AblateCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "ablate", "Disable experts or change k over a corpus; report ΔNLL, KL and top-1 agreement");
  AddModelOptions(*cmd, o->model);
  TraceRunSettings& run = o->ablation.run;
  CLI::Option* corpus = AddCorpusOptions(*cmd, run);
  CLI::Option* trace =
      cmd->add_option("--trace", o->ablation.trace,
                      "Run over the documents of this trace instead (the same token ids)")
          ->check(CLI::ExistingFile)
          ->excludes(corpus);
  corpus->excludes(trace);
  cmd->add_option("-o,--output", o->ablation.output,
                  "Results file (HDF5); the tidy CSV is written beside it with .csv")
      ->required();
  cmd->add_flag("--single-experts", o->sweep.single_experts,
                "Sweep: every (layer, expert) disabled alone (see --mode, --layers)");
  cmd->add_option("--mode", o->mode,
                  "How disabled experts are removed: reroute (mask, then top-k of the rest) | "
                  "drop (weight 0) | drop-renorm (weight 0, others rescaled)")
      ->capture_default_str();
  cmd->add_option("--layers", o->sweep.layers,
                  "Layers of the single-expert and top-r sweeps (default all)")
      ->delimiter(',');
  cmd->add_option("--top-r-max", o->sweep.top_r_max,
                  "Sweep (DeepSeekMoE): each token's r best experts disabled, r = 0..R")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-r-controls", o->sweep.top_r_controls,
                  "Random-r controls per r >= 1 of the top-r sweep: r experts drawn at random "
                  "from each token's k + r best are disabled instead (seeded by --seed)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--k-sweep", o->sweep.k_sweep,
                  "Sweep top-k: global | per-layer (see --k-values)");
  cmd->add_option("--k-values", o->sweep.k_values, "k values of the k sweep (default 1..E)")
      ->delimiter(',');
  cmd->add_flag("--shared-expert", o->sweep.shared_expert,
                "Sweep (DeepSeekMoE): the shared expert off in every MoE layer, then in each");
  cmd->add_option("--dynamic-k", o->sweep.dynamic_k,
                  "Sweep dynamic k in every layer: threshold=T,... | skip=BETA,... (NAEE) | "
                  "top-p=P,... (repeatable); results add the experts run per token");
  cmd->add_option("--threshold-k-min", o->sweep.threshold_k_min,
                  "Experts every token keeps under the threshold sweep")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--set", o->sweep.sets,
                  "A named expert set disabled together, NAME=LAYER:EXPERT,... (repeatable)");
  cmd->add_option("--random-controls", o->sweep.random_controls,
                  "Random sets of the same size per layer for every --set (seeded)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--policy", o->sweep.policy_files,
                  "A routing policy JSON file to run (repeatable)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--batch-size", o->ablation.pass.batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--group-size", o->ablation.pass.group_size,
                  "Policies run per pass over the corpus (results are saved per group)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", o->ablation.pass.bootstrap,
                  "Bootstrap replicates over documents (0 = no intervals)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->ablation.pass.seed,
                  "Seed of the bootstrap and the random and random-r controls")
      ->capture_default_str();
  cmd->add_option("--ci-level", o->ablation.pass.ci_level, "Confidence level")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->add_flag("!--no-token-values", o->ablation.pass.token_values,
                "Do not store per-token ΔNLL, KL and agreement");
  cmd->add_flag("--resume", o->ablation.resume,
                "Continue an interrupted sweep at --output, skipping finished policies");
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
