// moescope split: turn a dense LLaMA checkpoint into a LLaMA-MoE checkpoint (random, clustering
// or co-activation split of every FFN); the logic lives in analysis/split/expert_split.h.
#include <iostream>

#include "analysis/split/expert_split.h"
#include "cli/common.h"
#include "core/linear.h"

namespace moe::cli {
namespace {

struct SplitCommandOptions {
  std::string dense_dir, out_dir;
  std::string method = "random";
  std::string matrix = "up_proj";
  int experts = 0, top_k = 0;
  uint64_t seed = 0;
  double score_scale_factor = 0;
  bool no_multiply = false;
  bool allow_uneven = false;
  bool allow_non_finite_weights = false;
  std::vector<std::string> calibrate, corpus;
  int threads = 0;
};

void Run(const SplitCommandOptions& c, bool has_scale) {
  if (c.threads > 0) SetNumThreads(c.threads);
  ExpertSplitOptions o;
  o.method = ParseSplitMethod(c.method);
  o.matrix = ParseSplitMatrix(c.matrix);
  o.experts = c.experts;
  o.top_k = c.top_k;
  o.seed = c.seed;
  if (has_scale) o.score_scale_factor = c.score_scale_factor;
  o.multiply_gate_scores = !c.no_multiply;
  o.allow_uneven = c.allow_uneven;
  o.allow_non_finite_weights = c.allow_non_finite_weights;
  for (const std::string& f : c.calibrate) o.calibration_corpus.emplace_back(f);
  for (const std::string& f : c.corpus) o.coactivation_corpus.emplace_back(f);
  o.log = [](const std::string& line) { std::cerr << line << "\n"; };
  const ExpertSplitResult r = SplitDenseCheckpoint(c.dense_dir, c.out_dir, o);
  const std::vector<int>& sizes = r.sizes.empty() ? std::vector<int>{} : r.sizes[0];
  const auto [lo, hi] = std::minmax_element(sizes.begin(), sizes.end());
  std::cerr << "wrote " << c.out_dir << ": " << c.method << " split, " << c.experts
            << " experts of " << (sizes.empty() ? 0 : *lo)
            << (sizes.empty() || *lo == *hi ? "" : "-" + std::to_string(*hi)) << " neurons, top-"
            << c.top_k << ", score_scale_factor "
            << (r.calibrated ? "calibrated per layer"
                             : std::to_string(
                                   r.score_scale_factors.empty() ? 0.0f : r.score_scale_factors[0]))
            << ", " << r.dtype << "\n";
}

}  // namespace

void RegisterSplit(CLI::App& app) {
  auto o = std::make_shared<SplitCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "split", "Split a dense LLaMA checkpoint's FFNs into experts (a LLaMA-MoE checkpoint)");
  cmd->add_option("--method", o->method, "random | clustering | coactivation (default random)");
  cmd->add_option("--experts", o->experts, "Experts per layer (E)")->required();
  cmd->add_option("--top-k", o->top_k, "Experts selected per token (K <= E)")->required();
  cmd->add_option("--seed", o->seed, "Seed of the split and the router initialisation (default 0)");
  CLI::Option* scale = cmd->add_option("--score-scale-factor", o->score_scale_factor,
                                       "Score scale factor (default E / K)");
  cmd->add_flag("--no-multiply-gate-scores", o->no_multiply,
                "Write multiply_gate_scores false (with K = E the model equals the dense one)");
  cmd->add_flag("--allow-uneven", o->allow_uneven,
                "Allow E not dividing intermediate_size (sizes differ by at most one)");
  cmd->add_flag("--allow-non-finite-weights", o->allow_non_finite_weights,
                "Read a dense checkpoint holding NaN or infinity instead of refusing it");
  cmd->add_option("--matrix", o->matrix,
                  "FFN matrix that drives clustering and co-activation: up_proj (default) | "
                  "gate_proj");
  cmd->add_option("--calibrate", o->calibrate,
                  "Corpus files (JSONL or text) to calibrate per-layer score scale factors on");
  cmd->add_option(
      "--corpus", o->corpus,
      "Corpus files (JSONL or text) to measure co-activation on (--method coactivation)");
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("dense_dir", o->dense_dir, "Dense LLaMA checkpoint folder")->required();
  cmd->add_option("out_dir", o->out_dir, "Folder to write the LLaMA-MoE checkpoint to")->required();
  cmd->callback([o, scale] { g_exit_code = Guarded([&] { Run(*o, scale->count() > 0); }); });
}

}  // namespace moe::cli
