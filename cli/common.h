#pragma once
// What every subcommand shares: the --model and --threads options and the error convention
// (one line on stderr, exit code 1).
#include <CLI/CLI.hpp>
#include <atomic>
#include <functional>
#include <string>

#include "analysis/policy/policy_source.h"
#include "analysis/run/trace_header.h"
#include "core/model_loader.h"

namespace moe::cli {

struct ModelOptions {
  std::string model_dir;
  int threads = 0;                        // 0 = all cores
  bool bf16_activations = false;          // ActivationPrecision::kBF16 (core/linear.h)
  bool huge_pages = false;                // --huge-pages: WeightPages::kHuge (core/model_loader.h)
  std::string weight_pages;               // --weight-pages; "" = the command's default
  bool allow_non_finite_weights = false;  // LoadOptions::allow_non_finite_weights
};

void AddModelOptions(CLI::App& cmd, ModelOptions& options);
// `default_pages` is where the command reads weights unless --weight-pages or --huge-pages says
// otherwise: generate copies them into huge pages in the background, the rest read them mapped.
LoadedModel OpenModel(const ModelOptions& options,
                      WeightPages default_pages = WeightPages::kMapped);

// The corpus flags of trace and ablate: --corpus (returned, so a command can make it required or
// exclusive), --domain, --only-domains, --max-documents-per-domain, --max-tokens-per-document,
// --max-window, --window-stride.
CLI::Option* AddCorpusOptions(CLI::App& cmd, TraceRunSettings& run);

// The intervention flags (--policy, --disable, --mode, --top-k, --top-r, --random-r,
// --random-r-seed). top_k_flag renames --top-k where a command already uses it for sampling.
void AddPolicyOptions(CLI::App& cmd, PolicySource& source,
                      const std::string& top_k_flag = "--top-k");

// While alive, SIGINT and SIGTERM set stop() instead of ending the process, so a corpus job
// ends after its current batch and commits what it finished (a second Ctrl-C ends the process at
// once). Commands that stopped this way exit with 130.
class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
  const std::atomic<bool>* stop() const;
};

// Runs a subcommand body, turning moe::Error and other exceptions into a one-line message (exit
// code 1); otherwise returns the exit code the body set in g_exit_code (0 unless it said
// otherwise).
int Guarded(const std::function<void()>& body);

// Each subcommand file registers itself; main.cpp calls these.
void RegisterInfo(CLI::App& app);
void RegisterGenerate(CLI::App& app);
void RegisterScore(CLI::App& app);
void RegisterClassify(CLI::App& app);
void RegisterAnswer(CLI::App& app);
void RegisterConvert(CLI::App& app);
void RegisterForward(CLI::App& app);
void RegisterReplay(CLI::App& app);
void RegisterTrace(CLI::App& app);
void RegisterTokenize(CLI::App& app);
void RegisterStats(CLI::App& app);
void RegisterAblate(CLI::App& app);
void RegisterCompare(CLI::App& app);
void RegisterCacheSim(CLI::App& app);
void RegisterSplit(CLI::App& app);
void RegisterImportance(CLI::App& app);
void RegisterPrune(CLI::App& app);
void RegisterPruneCurve(CLI::App& app);

void RegisterMerge(CLI::App& app);

// Set by a subcommand's callback; returned by main.
extern int g_exit_code;
// The command line as given (arguments joined by NUL), set by main: the ranks of an MPI run
// compare it at start-up.
extern std::string g_command_line;

// How a corpus command runs (docs/distributed.md): 0 = as one process, as always; otherwise the
// number of processes an MPI launcher (mpirun) started this one among. Throws Error when a
// launcher started several and this moescope was built without MPI (MOESCOPE_MPI=OFF).
int LaunchedRanks();

}  // namespace moe::cli
