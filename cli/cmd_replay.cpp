// moescope replay: routes recorded by another engine forced over the same tokens, with per-layer
// agreement against the engine's own routing and the NLL difference; moescope's own fp32 vs bf16
// routing flips the same way. The logic lives in analysis/replay/replay_job.h.
#include <iostream>

#include "analysis/replay/replay_job.h"
#include "cli/common.h"

namespace moe::cli {
namespace {

struct ReplayCommandOptions {
  ModelOptions model;
  ReplayJob job;
  std::string routes, token_ids, trace, export_routes, output;
};

void Run(ReplayCommandOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  o.job.routes = {o.routes, o.token_ids};
  o.job.trace = o.trace;
  o.job.export_routes = o.export_routes;
  o.job.output = o.output;
  std::cout << RunReplayJob(m, o.job).report;
}

}  // namespace

void RegisterReplay(CLI::App& app) {
  auto o = std::make_shared<ReplayCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "replay",
      "Force routes recorded elsewhere over the same tokens; per-layer agreement and ΔNLL "
      "(also fp32 vs bf16 routing)");
  AddModelOptions(*cmd, o->model);
  CLI::Option* corpus = AddCorpusOptions(*cmd, o->job.run);
  CLI::Option* trace =
      cmd->add_option("--trace", o->trace, "Run over the documents of this trace instead")
          ->check(CLI::ExistingFile)
          ->excludes(corpus);
  corpus->excludes(trace);
  cmd->add_option("--routes", o->routes,
                  "Routes to replay: .npy int [tokens, layers, k], or .safetensors with "
                  "routed_experts (and token_ids); rows are the corpus's tokens in order");
  cmd->add_option("--token-ids", o->token_ids,
                  "The token ids the routes were recorded for: .npy int [tokens] (a .safetensors "
                  "routes file carries them as token_ids)");
  cmd->add_flag("--precision", o->job.precision,
                "Audit moescope's own routing with bf16 activations against fp32");
  cmd->add_option("--export-routes", o->export_routes,
                  "Write moescope's own routes over the corpus in the import format "
                  "(.safetensors)");
  cmd->add_option("-o,--output", o->output, "The report as a tidy CSV");
  cmd->add_option("--batch-size", o->job.audit.batch_size, "Documents per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", o->job.audit.bootstrap,
                  "Bootstrap replicates over documents (0 = no intervals)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->job.audit.seed, "Seed of the bootstrap")->capture_default_str();
  cmd->add_option("--ci-level", o->job.audit.ci_level, "Confidence level")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
