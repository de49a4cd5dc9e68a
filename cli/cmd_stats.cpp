// moescope stats: routing statistics over traces (load, balance, entropy, specialization,
// co-activation, repetition, with bootstrap intervals); the logic lives in
// analysis/stats/stats_job.h.
#include <unistd.h>

#include <iostream>

#include "analysis/stats/stats_job.h"
#include "cli/common.h"
#ifdef MOESCOPE_WITH_MPI
#include "analysis/distributed/mpi_stats.h"
#endif

namespace moe::cli {

void RegisterStats(CLI::App& app) {
  auto o = std::make_shared<StatsRunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "Routing statistics of traces (shards merge) -> DIR/stats.h5, stats.csv, stats.json");
  StatsOptions& s = o->stats;
  cmd->add_option("traces", o->traces, "Trace files (HDF5) of one model; shards in order")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "Folder to write the statistics to")->required();
  cmd->add_option("--bootstrap", s.bootstrap,
                  "Bootstrap replicates over documents for confidence intervals (0 = none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--permutations", s.permutations,
                  "Domain-label permutations for the specialization test: a number (0 = no "
                  "test) or auto (enough that one cell can be a discovery at --fdr after "
                  "Benjamini-Hochberg over all cells)")
      ->default_str("auto")
      ->transform(CLI::Transformer({{"auto", "-1"}}))
      ->check(CLI::Range(-1, 100'000'000));
  cmd->add_option("--fdr", s.fdr,
                  "False discovery rate of the reported discoveries (Benjamini-Hochberg)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 0.5));
  cmd->add_option("--min-documents", s.min_documents,
                  "Fewest documents a row needs for an interval (fewer: the estimate alone)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1'000'000'000));
  cmd->add_option("--seed", s.seed, "Seed of the bootstrap, permutations and baselines")
      ->capture_default_str();
  cmd->add_option("--ci-level", s.ci_level, "Confidence level of the intervals")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->add_flag("--rank-adjacent", s.rank_adjacent,
                "Also count OLMoE's rank-adjacent co-activation pairs (paper-compatible mode)");
  cmd->add_flag("!--no-vocab", s.vocabulary, "Skip the token id x expert tables");
  cmd->add_option("--min-token-count", s.vocab_min_count,
                  "Vocabulary specialization keeps tokens seen at least this often (OLMoE: 10)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--top-tokens", s.top_tokens, "Tokens listed per expert")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--entropy-bins", s.entropy_bins,
                  "Quantile bins per layer of the router entropy deficit histogram")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--margin-bins", s.margin_bins,
                  "Quantile bins per layer of the logit margin histogram")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tokenizer", o->tokenizer,
                  "tokenizer.model for token pieces (default: the traced model's)")
      ->check(CLI::ExistingFile);
  cmd->callback([o] {
    g_exit_code = Guarded([&] {
      o->progress = ::isatty(STDERR_FILENO) == 1;
#ifdef MOESCOPE_WITH_MPI
      // Under mpirun: the ranks share the documents and add their sums (mpi_stats.h).
      if (LaunchedRanks() > 0) {
        const distributed::MpiSession mpi;
        g_exit_code = distributed::RunDistributedStats(mpi, *o, g_command_line, std::cerr);
        return;
      }
#else
      LaunchedRanks();  // refuses several processes started by mpirun
#endif
      std::cerr << FormatStatsSummary(RunStats(*o)) << "\n";
    });
  });
}

}  // namespace moe::cli
