#include "cli/common.h"

#include "analysis/distributed/shard_plan.h"

#include <csignal>
#include <iostream>

#include "core/error.h"
#include "core/linear.h"

namespace moe::cli {

int g_exit_code = 0;

namespace {
std::atomic<bool> g_stop{false};

void OnStopSignal(int sig) {
  g_stop = true;
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}
}  // namespace

StopOnSignals::StopOnSignals() {
  g_stop = false;
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
}

StopOnSignals::~StopOnSignals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

const std::atomic<bool>* StopOnSignals::stop() const {
  return &g_stop;
}

void AddModelOptions(CLI::App& cmd, ModelOptions& options) {
  cmd.add_option("--model", options.model_dir,
                 "Model folder (config.json, safetensors or .bin, tokenizer.model); default: "
                 "$MOESCOPE_MODEL or the bundled model");
  cmd.add_option("--threads", options.threads, "Worker threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--bf16-activations", options.bf16_activations,
               "With bf16 weights, round activations to bf16 before each GEMM as PyTorch's bf16 "
               "runs do: about 2x faster prefill, no longer fp32-accurate (default: off)");
  CLI::Option* pages =
      cmd.add_option("--weight-pages", options.weight_pages,
                     "Where weights are read from: mapped (in place from the file, loads at "
                     "once), huge (copied into 2 MiB pages first: faster decoding of large "
                     "models, a longer load) or background (copied into 2 MiB pages while the "
                     "model runs); default: background for generate, mapped otherwise")
          ->check(CLI::IsMember({"mapped", "huge", "background"}));
  cmd.add_flag("--huge-pages", options.huge_pages, "Same as --weight-pages huge")->excludes(pages);
  cmd.add_flag("--allow-non-finite-weights", options.allow_non_finite_weights,
               "Load weights holding NaN or infinity instead of refusing them, to debug a broken "
               "checkpoint (outputs will be NaN; default: off)");
}

CLI::Option* AddCorpusOptions(CLI::App& cmd, TraceRunSettings& run) {
  CLI::Option* corpus =
      cmd.add_option("--corpus", run.corpus_files,
                     "JSONL ({\"id\", \"domain\", \"text\" or \"input_ids\"} per line) or plain "
                     "text files (one document each); repeatable")
          ->check(CLI::ExistingFile);
  cmd.add_option("--domain", run.default_domain,
                 "Domain of plain text files and of JSONL lines without one");
  cmd.add_option("--only-domains", run.only_domains,
                 "Only documents of these domains (comma-separated)")
      ->delimiter(',');
  cmd.add_option("--max-documents-per-domain", run.max_documents_per_domain,
                 "Only each domain's first N documents")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--max-tokens-per-document", run.max_tokens_per_document,
                 "Only each document's first N tokens")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--max-window", run.windows.max_window,
                 "Longest window run at once; longer documents are split (default: the "
                 "context length)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--window-stride", run.windows.stride,
                 "Tokens between window starts (default: --max-window, no overlap; smaller "
                 "gives later windows max-window - stride tokens of context)")
      ->check(CLI::PositiveNumber);
  return corpus;
}

void AddPolicyOptions(CLI::App& cmd, PolicySource& source, const std::string& top_k_flag) {
  cmd.add_option("--policy", source.file, "Routing policy JSON (see docs/engine.md)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--disable", source.disable, "Disable experts, LAYER:EXPERT,... (e.g. 3:5,3:7)");
  cmd.add_option("--mode", source.mode,
                 "How disabled experts are removed: reroute | drop | drop-renorm");
  cmd.add_option(top_k_flag, source.top_k, "Experts per token, LAYER:K,... ('*' = every layer)");
  cmd.add_option("--top-r", source.top_r,
                 "Drop each token's r best experts first, LAYER:R,... ('*' = every layer)");
  cmd.add_option("--random-r", source.random_r,
                 "Control of --top-r: drop r experts drawn at random from each token's k + r best, "
                 "LAYER:R,... ('*' = every layer)");
  cmd.add_option("--random-r-seed", source.random_r_seed,
                 "Seed of the --random-r draws (default 0)");
}

LoadedModel OpenModel(const ModelOptions& options, WeightPages default_pages) {
  // CLI11 checked --weight-pages against the names ParseWeightPages takes.
  WeightPages pages = ParseWeightPages(options.weight_pages).value_or(default_pages);
  if (options.huge_pages) pages = WeightPages::kHuge;
  if (options.threads > 0) SetNumThreads(options.threads);
  SetActivationPrecision(options.bf16_activations ? ActivationPrecision::kBF16
                                                  : ActivationPrecision::kF32);
  return LoadModel(
      options.model_dir.empty() ? DefaultModelDir() : std::filesystem::path(options.model_dir),
      {.weight_pages = pages, .allow_non_finite_weights = options.allow_non_finite_weights});
}

std::string g_command_line;

int LaunchedRanks() {
  const int n = distributed::LauncherWorldSize();
#ifndef MOESCOPE_WITH_MPI
  if (n > 1)
    Fail("mpirun", "started " + std::to_string(n) +
                       " processes, but this moescope was built without MPI (MOESCOPE_MPI=OFF); "
                       "rebuild with libopenmpi-dev installed, or run it without mpirun");
  return 0;
#else
  return n;
#endif
}

int Guarded(const std::function<void()>& body) {
  try {
    g_exit_code = 0;
    body();
    return g_exit_code;  // 0, or what the body set (130: stopped by a signal)
  } catch (const Error& e) {
    std::cerr << "moescope: error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "moescope: error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace moe::cli
