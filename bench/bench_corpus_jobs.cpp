// moescope_bench_corpus_jobs: the corpus jobs side by side in one run, with their ratios to
// scoring, and the live prompt's latency. On one corpus (default: the bundled model over
// datasets/sample/*.jsonl), in the same windows and batches:
//   score      ScoreCorpus: forward + next-token NLL (the baseline of every ratio);
//   trace      RunTrace to an HDF5 file (routing hook, NLL and argmax, writer thread);
//   ablate-1   RunAblationPass with one policy (layer L's expert 0 re-routed; L = --layer, 3 by
//              default): the baseline forward with its kept logits, then the policy's forward
//              from layer L with NLL, KL and agreement;
//   ablate-4   the same with four policies (experts 0..3 of layer L), so that
//   policy     the rate of one more policy is 3 T / (t(ablate-4) − t(ablate-1)): what each policy
//              of a sweep costs once the baseline is paid.
// Rounds interleave the jobs in a rotated order (--warmup rounds first, not kept, default 1);
// each prints the median tokens/s and its ratio to scoring of the same run. Then the live prompt
// (analysis/run/prompt_probe.h, what moescope-studio calls on every edit) of a --prompt-tokens
// long prompt cut from the corpus's first document: median milliseconds of --probes calls.
// Output: one JSON line per job and one for the probe, with the 1-minute load average.
//
//   moescope_bench_corpus_jobs [--model DIR] [--corpus FILES...] [--rounds R] [--warmup W]
//                              [--threads N] [--layer L] [--prompt-tokens N] [--probes P]
//                              [--output-dir DIR]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_pass.h"
#include "analysis/run/corpus_scoring.h"
#include "analysis/run/prompt_probe.h"
#include "analysis/run/trace_runner.h"
#include "bench/bench_timing.h"
#include "bench/sample_corpus.h"
#include "core/error.h"
#include "core/linear.h"
#include "core/model_loader.h"

namespace {

using moe::bench::Clock;
using moe::bench::Median;
using moe::bench::Seconds;

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

struct Job {
  const char* name;
  std::vector<double> seconds;  // per kept round
};

// A prompt of `tokens` tokens (BOS included) decoded from the start of the corpus's first
// document; the probe re-encodes it, so the count it ran is reported beside the time.
std::string PromptText(const moe::LoadedModel& m, const moe::Corpus& corpus, size_t tokens) {
  const std::vector<int32_t>& ids = corpus.documents.at(0).ids;
  const size_t n = std::min(ids.size(), tokens);
  return m.RequireTokenizer().Decode(std::vector<int32_t>(ids.begin() + 1, ids.begin() + n));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Corpus jobs side by side: score, trace, ablation policies; live prompt latency");
  std::string model_dir,
      out_dir = (std::filesystem::temp_directory_path() / "moescope_bench_corpus_jobs").string();
  std::vector<std::string> corpus_files;
  int rounds = 3, warmup = 1, threads = 0, layer = 3, prompt_tokens = 50, probes = 51;
  app.add_option("--model", model_dir, "Model folder (default: the bundled model)");
  app.add_option("--corpus", corpus_files, "Corpus files (default: datasets/sample/*.jsonl)");
  app.add_option("--rounds", rounds, "Timed rounds of each job")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Untimed rounds first")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "Worker threads (default: all cores)");
  app.add_option("--layer", layer, "Layer of the ablation policies")->check(CLI::NonNegativeNumber);
  app.add_option("--prompt-tokens", prompt_tokens, "Tokens of the live prompt")
      ->check(CLI::PositiveNumber);
  app.add_option("--probes", probes, "Timed calls of the live prompt")->check(CLI::PositiveNumber);
  app.add_option("--output-dir", out_dir, "Where the trace is written (overwritten)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) moe::SetNumThreads(threads);
    const moe::LoadedModel m = moe::LoadModel(model_dir.empty() ? moe::DefaultModelDir()
                                                                : std::filesystem::path(model_dir));
    const moe::ModelConfig& c = m.config();
    if (layer >= c.num_hidden_layers) moe::Fail("--layer", "past the model's last layer");
    std::vector<std::filesystem::path> files(corpus_files.begin(), corpus_files.end());
    if (files.empty()) files = moe::bench::SampleCorpus();
    std::filesystem::create_directories(out_dir);
    const int64_t ctx = c.context_length();
    const moe::Corpus corpus = moe::ReadCorpus(files, m.tokenizer.get(), c.vocab_size, {});
    const moe::ScoredTokens scored = moe::ScoredTokens::Of(corpus);
    std::vector<moe::AblationPolicy> policies =
        moe::SingleExpertSweep(c, moe::DisableMode::kReroute, {layer});
    policies.resize(4);
    moe::AblationPassOptions pass;
    pass.windows = {ctx, ctx};
    pass.bootstrap = 0;

    std::vector<Job> jobs = {{"score", {}}, {"trace", {}}, {"ablate-1", {}}, {"ablate-4", {}}};
    int64_t tokens = 0;  // scored predictions (the same in every job)
    for (int round = -warmup; round < rounds; ++round) {
      for (size_t i = 0; i < jobs.size(); ++i) {
        const size_t j = (i + static_cast<size_t>(round + warmup)) % jobs.size();
        const auto start = Clock::now();
        if (j == 0) {
          const moe::CorpusScore s =
              moe::ScoreCorpus(*m.model, corpus, {.windows = {ctx, ctx}, .batch_size = 8});
          tokens = 0;
          for (const moe::DocumentScore& d : s.documents) tokens += d.predicted;
        } else if (j == 1) {
          moe::TraceOptions o;
          o.output = std::filesystem::path(out_dir) / "trace.h5";
          std::filesystem::remove(o.output);
          for (const auto& f : files) o.run.corpus_files.push_back(f.string());
          moe::RunTrace(m, moe::RoutingPolicy{}, o);
        } else {
          const std::vector<moe::AblationPolicy> run(policies.begin(),
                                                     policies.begin() + (j == 2 ? 1 : 4));
          moe::RunAblationPass(*m.model, corpus, scored, run, pass);
        }
        if (round >= 0) jobs[j].seconds.push_back(Seconds(start));
      }
    }
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    const double load = LoadAverage();
    const double score_rate = static_cast<double>(tokens) / Median(jobs[0].seconds);
    auto line = [&](const char* name, double rate) {
      std::printf(
          "{\"job\": \"%s\", \"tokens\": %lld, \"tok_s\": %.0f, \"of_score\": %.3f, "
          "\"threads\": %d, \"rounds\": %d, \"layer\": %d, \"omp_wait_policy\": \"%s\", "
          "\"load1\": %.2f}\n",
          name, static_cast<long long>(tokens), rate, rate / score_rate, moe::NumThreads(), rounds,
          layer, wait ? wait : "(unset)", load);
    };
    for (const Job& job : jobs) line(job.name, static_cast<double>(tokens) / Median(job.seconds));
    // Per round, so that both ablation runs of the difference saw the same machine.
    std::vector<double> extra;
    for (size_t r = 0; r < jobs[2].seconds.size(); ++r)
      extra.push_back(jobs[3].seconds[r] - jobs[2].seconds[r]);
    line("policy", 3.0 * static_cast<double>(tokens) / Median(extra));

    const std::string prompt = PromptText(m, corpus, static_cast<size_t>(prompt_tokens));
    std::vector<double> ms;
    int64_t ran = 0;
    for (int i = -1; i < probes; ++i) {  // call -1 warms up
      const auto start = Clock::now();
      ran = moe::Probe(m, prompt, nullptr, 10).size();
      if (i >= 0) ms.push_back(1e3 * Seconds(start));
    }
    std::printf(
        "{\"job\": \"live_prompt\", \"prompt_tokens\": %lld, \"median_ms\": %.2f, "
        "\"min_ms\": %.2f, \"probes\": %d, \"threads\": %d, \"omp_wait_policy\": \"%s\", "
        "\"load1\": %.2f}\n",
        static_cast<long long>(ran), Median(ms), *std::min_element(ms.begin(), ms.end()), probes,
        moe::NumThreads(), wait ? wait : "(unset)", LoadAverage());
  } catch (const std::exception& e) {
    std::cerr << "moescope_bench_corpus_jobs: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
