// moescope_bench_trace: what recording a routing trace costs, and how close corpus runs come to
// the model's prefill rate. The same corpus is run, in the same windows and padded batches, four
// ways, and a fifth variant measures plain prefill:
//   score           ScoreCorpus: forward + next-token NLL, no hook attached (the baseline);
//   trace           RunTrace to an HDF5 file: routing hook, chunk builder, writer thread;
//   trace+logits    as trace, every token's router logits recorded (--record-logits);
//   trace+logits/4  as trace, logits of a quarter of the tokens (--logit-sample-rate 0.25);
//   prefill         forward of one context-length sequence of random ids plus the lm_head over
//                   every position, repeated for about as many tokens as the corpus has (what
//                   moescope_bench_engine calls prefill_tok_s); its row reports each corpus
//                   variant's rate as a fraction of it.
// Rounds interleave the five, each round in a rotated order, so that machine load and the
// page-cache writeback of the previous variant's file hit them alike; each reports the median
// tokens/s over rounds and its ratio to the baseline of the same run. Corpus reading
// (tokenization) is inside every timing, as in `moescope score` and `moescope trace`.
//
//   moescope_bench_trace [--model DIR] [--corpus FILES...] [--rounds R] [--batch-size B]
//                        [--threads N] [--output-dir DIR]
// Defaults: the bundled model and sample corpus (datasets/sample/*.jsonl), 3 rounds, batch 8.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "analysis/run/corpus_scoring.h"
#include "analysis/run/trace_runner.h"
#include "bench/bench_timing.h"
#include "bench/sample_corpus.h"
#include "core/batch.h"
#include "core/error.h"
#include "core/heads.h"
#include "core/linear.h"
#include "core/model_loader.h"

namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { kScore, kTrace, kPrefill };

struct Variant {
  const char* name;
  Kind kind;
  bool logits;
  double sample_rate;
  std::vector<double> rates;  // tokens/s per round
};

// Forwards of one sequence of `ctx` random ids plus all-position logits until about `tokens`
// tokens have run; returns the tokens run.
int64_t RunPrefill(const moe::MoeModel& model, int64_t ctx, int64_t tokens) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int32_t> dist(3, model.config().vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(ctx));
  for (int32_t& id : ids) id = dist(rng);
  std::vector<float> logits(static_cast<size_t>(ctx * model.config().vocab_size));
  int64_t done = 0;
  while (done < std::max<int64_t>(tokens, 1)) {
    const std::vector<float> hidden = model.Forward(moe::Batch::Single(ids));
    moe::LmLogits(model, hidden.data(), ctx, logits.data());
    done += ctx;
  }
  return done;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Tracing overhead: scoring a corpus with and without recording its routing");
  std::string model_dir,
      out_dir = (std::filesystem::temp_directory_path() / "moescope_bench_trace").string();
  std::vector<std::string> corpus_files;
  int rounds = 3, batch_size = 8, threads = 0;
  app.add_option("--model", model_dir, "Model folder (default: the bundled model)");
  app.add_option("--corpus", corpus_files, "Corpus files (default: datasets/sample/*.jsonl)");
  app.add_option("--rounds", rounds, "Timed rounds of each variant")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "Windows per forward pass")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Worker threads (default: all cores)");
  app.add_option("--output-dir", out_dir, "Where the traces are written (overwritten)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) moe::SetNumThreads(threads);
    const moe::LoadedModel m = moe::LoadModel(model_dir.empty() ? moe::DefaultModelDir()
                                                                : std::filesystem::path(model_dir));
    std::vector<std::filesystem::path> files(corpus_files.begin(), corpus_files.end());
    if (files.empty()) files = moe::bench::SampleCorpus();
    std::filesystem::create_directories(out_dir);
    const moe::ModelConfig& c = m.config();
    const int64_t ctx = c.context_length();

    std::vector<Variant> variants = {{"score", Kind::kScore, false, 1.0, {}},
                                     {"trace", Kind::kTrace, false, 1.0, {}},
                                     {"trace+logits", Kind::kTrace, true, 1.0, {}},
                                     {"trace+logits/4", Kind::kTrace, true, 0.25, {}},
                                     {"prefill", Kind::kPrefill, false, 1.0, {}}};
    int64_t tokens = 0;
    for (int round = -1; round < rounds; ++round) {  // round -1 warms caches and is not kept
      // Each round starts one variant later, so none always follows the largest write.
      for (size_t i = 0; i < variants.size(); ++i) {
        Variant& v = variants[(i + static_cast<size_t>(round + 1)) % variants.size()];
        const auto start = Clock::now();
        int64_t n = 0;
        if (v.kind == Kind::kPrefill) {
          n = RunPrefill(*m.model, ctx, tokens);
        } else if (v.kind == Kind::kScore) {
          const moe::Corpus corpus = moe::ReadCorpus(files, m.tokenizer.get(), c.vocab_size, {});
          n = moe::ScoreCorpus(*m.model, corpus, {.windows = {ctx, ctx}, .batch_size = batch_size})
                  .tokens;
        } else {
          moe::TraceOptions o;
          o.output = std::filesystem::path(out_dir) /
                     ("variant" + std::to_string(&v - &variants[0]) + ".h5");
          std::filesystem::remove(o.output);
          o.batch_size = batch_size;
          for (const auto& f : files) o.run.corpus_files.push_back(f.string());
          o.run.record_logits = v.logits;
          o.run.logit_sample_rate = v.sample_rate;
          n = moe::RunTrace(m, moe::RoutingPolicy{}, o).tokens;
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (v.kind != Kind::kPrefill) tokens = n;
        if (round >= 0) v.rates.push_back(static_cast<double>(n) / seconds);
      }
    }
    const double base = moe::bench::Median(variants[0].rates);
    const double prefill = moe::bench::Median(variants.back().rates);
    std::printf(
        "model %s, %lld tokens, batch %d, threads %d, %d rounds (medians), OMP_WAIT_POLICY=%s\n",
        m.dir.string().c_str(), static_cast<long long>(tokens), batch_size, moe::NumThreads(),
        rounds, std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)");
    for (const Variant& v : variants) {
      const double rate = moe::bench::Median(v.rates);
      std::printf("%-16s %10.0f tokens/s  ratio %.3f  overhead %+.1f%%  of prefill %.2f\n", v.name,
                  rate, rate / base, (base / rate - 1.0) * 100.0, rate / prefill);
    }
  } catch (const std::exception& e) {
    std::cerr << "moescope_bench_trace: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
