// moescope trace: run a model over a corpus and write its routing trace (HDF5); the logic lives
// in analysis/run/trace_runner.h. Ctrl-C or SIGTERM commits the finished documents and stops;
// --resume continues.
#include <unistd.h>

#include <iostream>

#include "analysis/policy/policy_source.h"
#include "analysis/run/trace_runner.h"
#include "cli/common.h"
#ifdef MOESCOPE_WITH_MPI
#include "analysis/distributed/mpi_trace.h"
#endif

namespace moe::cli {
namespace {

struct TraceCommandOptions {
  ModelOptions model;
  TraceOptions trace;
  PolicySource policy;
};

#ifdef MOESCOPE_WITH_MPI
// Under mpirun: every rank traces its share into OUT.rank-RRRR.h5, rank 0 joins them into OUT.h5
// (analysis/distributed/mpi_trace.h).
void RunDistributed(TraceCommandOptions& o) {
  const distributed::MpiSession mpi;
  const StopOnSignals signals;
  auto trace = [&](const TraceOptions& options) {
    const LoadedModel m = OpenModel(o.model);
    const RoutingPolicy policy = MakePolicy(o.policy, m.config());
    return RunTrace(m, policy, options);
  };
  g_exit_code = distributed::RunDistributedTrace(mpi, trace, o.trace, g_command_line,
                                                 signals.stop(), ::isatty(STDERR_FILENO) == 1,
                                                 std::cerr);
}
#endif

void Run(TraceCommandOptions& o) {
#ifdef MOESCOPE_WITH_MPI
  if (LaunchedRanks() > 0) return RunDistributed(o);
#else
  LaunchedRanks();  // refuses several processes started by mpirun
#endif
  const LoadedModel m = OpenModel(o.model);
  const RoutingPolicy policy = MakePolicy(o.policy, m.config());
  o.trace.progress = ::isatty(STDERR_FILENO) == 1;
  const StopOnSignals signals;  // Ctrl-C or SIGTERM: commit the finished documents and stop
  o.trace.stop = signals.stop();
  const TraceSummary summary = RunTrace(m, policy, o.trace);
  std::cerr << FormatSummary(summary) << "\n";
  if (summary.interrupted) {
    std::cerr << "interrupted: the finished documents are committed; continue with the same "
                 "command and --resume\n";
    g_exit_code = 130;
  }
}

}  // namespace

void RegisterTrace(CLI::App& app) {
  auto o = std::make_shared<TraceCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "trace", "Run the model over a corpus and record its routing to an HDF5 trace");
  AddModelOptions(*cmd, o->model);
  TraceRunSettings& run = o->trace.run;
  AddCorpusOptions(*cmd, run)->required();
  cmd->add_option("-o,--output", o->trace.output, "Trace file to write (HDF5)")->required();
  cmd->add_option("--batch-size", o->trace.batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--record-logits", run.record_logits,
                "Also record all router logits (float16) of sampled tokens");
  cmd->add_option("--logit-sample-rate", run.logit_sample_rate,
                  "Fraction of tokens whose logits are recorded (deterministic per token)")
      ->capture_default_str();
  cmd->add_option("--commit-tokens", o->trace.commit_tokens,
                  "Commit (flush, make visible to readers, protect from crashes) after about this "
                  "many tokens of finished documents, or every 2 s")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--resume", o->trace.resume,
                "Continue an interrupted trace at --output (same model, corpus and policy)");
  AddPolicyOptions(*cmd, o->policy);
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
