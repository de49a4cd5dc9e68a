// moescope ablate: switch experts off (or change k) and measure what breaks: ΔNLL per domain,
// KL to the baseline, top-1 agreement, with bootstrap intervals; the logic lives in
// analysis/ablation.h. Ctrl-C stops after the current batch; --resume continues.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "analysis/ablation.h"
#include "cli/common.h"
#include "core/error.h"

namespace moe::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnInterrupt(int) {
  g_stop = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

struct AblateCommandOptions {
  ModelOptions model;
  AblationOptions ablation;
  bool single = false;
  std::string mode = "reroute";
  std::vector<int> layers;
  int top_r_max = -1;
  std::string k_sweep;  // "", "global" or "per-layer"
  std::vector<int> k_values;
  std::vector<std::string> sets;  // NAME=L:E,L:E
  int random_controls = 0;
  std::vector<std::string> policy_files;
};

DisableMode ParseMode(const std::string& s) {
  if (s == "reroute") return DisableMode::kReroute;
  if (s == "drop") return DisableMode::kDrop;
  if (s == "drop-renorm") return DisableMode::kDropRenormalize;
  Fail("--mode", "is '" + s + "', expected reroute, drop or drop-renorm");
}

std::vector<AblationPolicy> Policies(const AblateCommandOptions& o, const LlamaMoeConfig& c) {
  std::vector<AblationPolicy> out = {NoAblation(c)};
  const DisableMode mode = ParseMode(o.mode);
  auto add = [&](std::vector<AblationPolicy> more) {
    out.insert(out.end(), more.begin(), more.end());
  };
  if (o.single) add(SingleExpertSweep(c, mode, o.layers));
  if (o.top_r_max >= 0) add(TopRSweep(c, o.top_r_max, o.layers));
  if (!o.k_sweep.empty()) {
    if (o.k_sweep != "global" && o.k_sweep != "per-layer")
      Fail("--k-sweep", "is '" + o.k_sweep + "', expected global or per-layer");
    add(KSweep(c, o.k_sweep == "per-layer", o.k_values));
  }
  for (const std::string& s : o.sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos) Fail("--set", "'" + s + "' must look like NAME=LAYER:EXPERT,...");
    const AblationPolicy set = ExpertSet(c, s.substr(0, eq), s.substr(eq + 1), mode);
    out.push_back(set);
    add(RandomControls(c, set, o.random_controls, o.ablation.seed));
  }
  for (const std::string& file : o.policy_files) {
    std::ifstream in(file);
    if (!in) Fail(file, "cannot be read");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      Fail(file, std::string("is not valid JSON (") + e.what() + ")");
    }
    AblationPolicy p;
    p.name = std::filesystem::path(file).stem().string();
    p.kind = "custom";
    p.policy = RoutingPolicy::FromJson(j, c, file);
    p.first_layer = FirstChangedLayer(p.policy, c);
    out.push_back(std::move(p));
  }
  if (out.size() == 1)
    Fail("ablate", "choose a sweep: --single-experts, --top-r-max, --k-sweep, --set or --policy");
  return out;
}

void Run(AblateCommandOptions& o) {
  const LoadedModel m = OpenModel(o.model);
  const std::vector<AblationPolicy> policies = Policies(o, m.config());
  o.ablation.progress = ::isatty(STDERR_FILENO) == 1;
  g_stop = false;
  o.ablation.stop = &g_stop;
  std::signal(SIGINT, OnInterrupt);
  const AblationSummary summary = RunAblation(m, policies, o.ablation);
  std::signal(SIGINT, SIG_DFL);
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
  cmd->add_option("--corpus", run.corpus_files, "JSONL or plain text files, as for trace")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->ablation.output,
                  "Results file (HDF5); the tidy CSV is written beside it with .csv")
      ->required();
  cmd->add_option("--domain", run.default_domain, "Domain of documents without one");
  cmd->add_option("--only-domains", run.only_domains, "Only these domains (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--max-window", run.windows.max_window,
                  "Longest window run at once (default: the context length)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--window-stride", run.windows.stride, "Tokens between window starts")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--single-experts", o->single,
                "Sweep: every (layer, expert) disabled alone (see --mode, --layers)");
  cmd->add_option("--mode", o->mode,
                  "How disabled experts are removed: reroute (mask, then top-k of the rest) | "
                  "drop (weight 0) | drop-renorm (weight 0, others rescaled)")
      ->capture_default_str();
  cmd->add_option("--layers", o->layers,
                  "Layers of the single-expert and top-r sweeps (default all)")
      ->delimiter(',');
  cmd->add_option("--top-r-max", o->top_r_max,
                  "Sweep (DeepSeekMoE): each token's r best experts disabled, r = 0..R")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--k-sweep", o->k_sweep, "Sweep top-k: global | per-layer (see --k-values)");
  cmd->add_option("--k-values", o->k_values, "k values of the k sweep (default 1..E)")
      ->delimiter(',');
  cmd->add_option("--set", o->sets,
                  "A named expert set disabled together, NAME=LAYER:EXPERT,... (repeatable)");
  cmd->add_option("--random-controls", o->random_controls,
                  "Random sets of the same size per layer for every --set (seeded)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--policy", o->policy_files, "A routing policy JSON file to run (repeatable)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--batch-size", o->ablation.batch_size, "Windows per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--group-size", o->ablation.group_size,
                  "Policies run per pass over the corpus (results are saved per group)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", o->ablation.bootstrap,
                  "Bootstrap replicates over documents (0 = no intervals)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->ablation.seed, "Seed of the bootstrap and the random controls")
      ->capture_default_str();
  cmd->add_option("--ci-level", o->ablation.ci_level, "Confidence level")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.9999));
  cmd->add_flag("!--no-token-values", o->ablation.token_values,
                "Do not store per-token ΔNLL, KL and agreement");
  cmd->add_flag("--resume", o->ablation.resume,
                "Continue an interrupted sweep at --output, skipping finished policies");
  cmd->callback([o] {
    const int status = Guarded([&] { Run(*o); });
    if (status != 0) g_exit_code = status;
  });
}

}  // namespace moe::cli
