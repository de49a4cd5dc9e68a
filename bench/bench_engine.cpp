// moescope_bench_engine: prefill and KV-cache decode throughput of the engine on a model folder,
// measured the way bench/torch_reference_bench.py measures the PyTorch reference, so the two
// can be compared row by row (bench/run_engine_vs_pytorch.sh does that).
//
//   prefill: one forward of a single sequence of P random (seeded) token ids through a fresh
//            KV cache, plus the lm_head over all P positions (the PyTorch reference computes
//            logits for every position); also reported with the lm_head of the last position
//            only (what generation needs) as prefill_last_tok_s. All three come from the same
//            forward, so the variants cost one extra lm_head row, not extra prefills.
//   decode:  after a prompt of --prompt-tokens random tokens (default 1, as the PyTorch
//            reference), D greedy steps of one token each through the KV cache (forward +
//            lm_head + argmax); the prompt is not timed.
// With --prompt TEXT (needs tokenizer.model in the model folder) the text's token ids replace
// the random ones: prefill runs over them (repeated up to P tokens, or cut to P) and decode
// continues the whole text; the greedy continuation is printed as "continuation".
// Each is run once as a warm-up, then R times; the medians are reported as tokens/s.
// Prints one JSON line per --threads value, with the load time of the (mmap) checkpoint, the
// process's peak resident memory so far, and decode and prefill as fractions of the read
// bandwidth and of the bf16 GEMM peak measured in the same process (bench/hardware_probes.h).
#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_timing.h"
#include "bench/hardware_probes.h"
#include "bench/token_costs.h"
#include "core/batch.h"
#include "core/bf16_matmul.h"
#include "core/decode_step.h"
#include "core/error.h"
#include "core/heads.h"
#include "core/kv_cache.h"
#include "core/linear.h"
#include "core/model_loader.h"
#include "core/moe_model.h"
#include "core/tensor.h"
#include "core/tokenizer.h"

namespace {

using moe::bench::Clock;
using moe::bench::Median;
using moe::bench::Seconds;

// CPU seconds of the whole process (all threads), to tell how much of the wall time the
// benchmark actually ran on a shared machine.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Round2(double x) {
  return static_cast<double>(static_cast<int64_t>(x * 100.0 + 0.5)) / 100.0;
}

double Round3(double x) {
  return static_cast<double>(static_cast<int64_t>(x * 1000.0 + 0.5)) / 1000.0;
}

// The checkpoint dtype as the PyTorch script names it ("f32", "bf16", "f16").
std::string WeightDType(const moe::MoeModel& model) {
  const moe::Matrix& w =
      model.weights().layers.empty() ? model.weights().embed : model.weights().layers[0].q;
  switch (w.dtype) {
    case moe::DType::kF32:
      return "f32";
    case moe::DType::kBF16:
      return "bf16";
    case moe::DType::kF16:
      return "f16";
    default:
      return moe::DTypeName(w.dtype);
  }
}

// A kB field of /proc/self/status ("VmRSS" now, "VmHWM" peak) or of another /proc file, in GiB.
// The mmapped checkpoint counts only with the pages actually touched, which is what tells
// whether a model "fits": the weights a forward reads plus the activations and KV cache.
double ResidentGiB(const std::string& field, const char* file = "/proc/self/status") {
  std::ifstream status(file);
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtod(line.c_str() + field.size() + 1, nullptr) / (1024.0 * 1024.0);  // kB
    }
  }
  // No procfs: getrusage's peak (kB on Linux) is the best there is, for either field.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

std::vector<int32_t> RandomIds(int64_t n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);  // skip pad/bos/eos like PyTorch's
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = dist(rng);
  return ids;
}

// `text` (which starts with BOS) repeated without its BOS and cut to n ids, so a short text still
// fills a prefill of the requested length and the measured work does not depend on the text.
std::vector<int32_t> RepeatToLength(const std::vector<int32_t>& text, int64_t n, int32_t bos) {
  const size_t skip = !text.empty() && text[0] == bos ? 1 : 0;
  if (text.size() <= skip) throw moe::Error("--prompt encodes to no tokens");
  std::vector<int32_t> ids(text.begin(), text.begin() + static_cast<int64_t>(skip));
  for (size_t i = 0; static_cast<int64_t>(ids.size()) < n; ++i)
    ids.push_back(text[skip + i % (text.size() - skip)]);
  ids.resize(static_cast<size_t>(n));
  return ids;
}

int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Whether the benchmark computed numbers at all: random weights that blow up through many layers
// would give inf/NaN logits and timings of meaningless work.
struct LogitCheck {
  bool finite = true;
  float max_abs = 0;
  void Add(const std::vector<float>& logits) {
    for (const float x : logits) {
      if (!std::isfinite(x))
        finite = false;
      else
        max_abs = std::max(max_abs, std::fabs(x));
    }
  }
};

struct PrefillTimes {
  double body = 0, head_all = 0, head_last = 0;
};

// One prefill: forward of `ids` through a fresh cache, then lm_head over all positions and over
// the last one, each timed on its own. `check` (untimed) inspects the logits.
PrefillTimes TimePrefill(const moe::MoeModel& model, const std::vector<int32_t>& ids,
                         moe::KvCache& cache, LogitCheck* check = nullptr) {
  const int64_t h = model.config().hidden_size, n = static_cast<int64_t>(ids.size());
  cache.Clear();
  const moe::Batch batch = moe::Batch::Single(ids);
  PrefillTimes t;
  auto start = Clock::now();
  const std::vector<float> hidden = model.Forward(batch, &cache);
  t.body = Seconds(start);
  // The logits go into one buffer reused across repeats, as a serving loop would keep it; a
  // fresh 64 MiB vector per call would time the page faults of zeroing it.
  thread_local std::vector<float> all;
  all.resize(static_cast<size_t>(n * model.config().vocab_size));
  start = Clock::now();
  moe::LmLogits(model, hidden.data(), n, all.data());
  t.head_all = Seconds(start);
  start = Clock::now();
  const std::vector<float> last = moe::LmLogits(model, hidden.data() + (n - 1) * h, 1);
  t.head_last = Seconds(start);
  if (all.empty() || last.empty()) std::abort();  // keeps the results observable
  if (check != nullptr) check->Add(all);
  return t;
}

// Seconds for `steps` greedy decode steps after an untimed prompt. `tokens` (if given) receives
// the steps + 1 greedy ids that follow the prompt, and `check` inspects every step's logits.
double TimeDecode(const moe::MoeModel& model, const std::vector<int32_t>& prompt, int steps,
                  moe::KvCache& cache, std::vector<int32_t>* tokens = nullptr,
                  LogitCheck* check = nullptr) {
  cache.Clear();
  std::vector<float> hidden = model.Forward(moe::Batch::Single(prompt), &cache);
  const int64_t h = model.config().hidden_size;
  std::vector<float> logits =
      moe::LmLogits(model, hidden.data() + (static_cast<int64_t>(prompt.size()) - 1) * h, 1);
  int32_t token = Argmax(logits);
  if (tokens != nullptr) *tokens = {token};
  const auto start = Clock::now();
  for (int s = 0; s < steps; ++s) {
    hidden =
        model.Forward(moe::Batch::Single({token}, static_cast<int32_t>(cache.length())), &cache);
    logits = moe::LmLogits(model, hidden.data(), 1);
    token = Argmax(logits);
    // Only the warm-up asks for these; they cost microseconds against a step's milliseconds.
    if (tokens != nullptr) tokens->push_back(token);
    if (check != nullptr) check->Add(logits);
  }
  return Seconds(start);
}

// ---- options --------------------------------------------------------------------------------

struct Options {
  std::string model_dir, text;  // text: --prompt (empty: random ids)
  std::vector<int> threads{1};
  int prefill = 512, decode = 64, prompt_tokens = 1, repeats = 3;
  uint64_t seed = 0;
  std::string activations = "f32";
  std::string weight_pages = "mapped";
  std::string kv_cache = "f32";
};

void AddOptions(CLI::App& app, Options& o) {
  app.add_option("--model", o.model_dir, "model folder (config.json + checkpoint)")->required();
  app.add_option("--threads", o.threads, "thread counts to measure, e.g. --threads 1 2 or 1,2")
      ->delimiter(',');
  app.add_option("--prefill", o.prefill, "prefill length P in tokens")->capture_default_str();
  app.add_option("--decode", o.decode, "decode steps D")->capture_default_str();
  auto* random_prompt = app.add_option("--prompt-tokens", o.prompt_tokens,
                                       "untimed random prompt length before decoding")
                            ->capture_default_str();
  app.add_option("--prompt", o.text,
                 "text to run instead of random ids (tokenized with the folder's tokenizer.model)")
      ->excludes(random_prompt);
  app.add_option("--repeats", o.repeats, "timed repetitions R after one warm-up")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random token ids")->capture_default_str();
  app.add_option("--activations", o.activations,
                 "f32: bf16 GEMMs keep fp32 accuracy (the default of every command); bf16: "
                 "activations rounded to bf16 as in PyTorch's bf16 runs")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  CLI::Option* pages =
      app.add_option("--weight-pages", o.weight_pages,
                     "mapped: weights read in place (mmap); huge: copied into 2 MiB pages before "
                     "the run; background: copied by a background thread, waited for (and timed) "
                     "before the first measurement")
          ->check(CLI::IsMember({"mapped", "huge", "background"}))
          ->capture_default_str();
  app.add_flag_callback(
         "--huge-pages", [&o] { o.weight_pages = "huge"; }, "same as --weight-pages huge")
      ->excludes(pages);
  app.add_option("--kv-cache", o.kv_cache,
                 "f32: keys and values cached as computed; bf16: rounded to bf16 when cached")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
}

// ---- setup ----------------------------------------------------------------------------------

// The model folder as loaded, with what loading cost.
struct Loaded {
  moe::LoadedModel loaded;
  double load_s = 0;
  double load_rss_gib = 0;  // what loading itself made resident (small for an mmapped checkpoint)
  double background_copy_s = 0;  // from load to the end of a background copy into huge pages
};

Loaded LoadTimed(const Options& o) {
  Loaded l;
  const double rss_before_load = ResidentGiB("VmRSS");
  const auto start = Clock::now();
  const moe::WeightPages pages = *moe::ParseWeightPages(o.weight_pages);  // checked by CLI11
  l.loaded = moe::LoadModel(o.model_dir, {.weight_pages = pages});
  l.load_s = Seconds(start);
  if (const std::string error = l.loaded.checkpoint->WaitForCopy(); !error.empty())
    throw moe::Error(error);
  l.background_copy_s = pages == moe::WeightPages::kHugeBackground ? Seconds(start) : 0.0;
  l.load_rss_gib = ResidentGiB("VmRSS") - rss_before_load;
  if (l.loaded.model->weights().lm_head.empty())
    throw moe::Error(o.model_dir + ": the benchmark needs a causal-LM checkpoint (lm_head)");
  return l;
}

// The token ids of the prefill and of the decode prompt: the --prompt text's, or random ones.
struct BenchIds {
  std::vector<int32_t> prefill, prompt;
};

BenchIds MakeIds(const Options& o, const moe::LoadedModel& loaded) {
  const moe::ModelConfig& c = loaded.config();
  BenchIds ids;
  if (!o.text.empty()) {
    const moe::Tokenizer& tokenizer = loaded.RequireTokenizer();
    ids.prompt = tokenizer.Encode(o.text);
    ids.prefill = RepeatToLength(ids.prompt, o.prefill, tokenizer.bos_id());
  } else {
    ids.prefill = RandomIds(o.prefill, c.vocab_size, o.seed);
    ids.prompt = RandomIds(o.prompt_tokens, c.vocab_size, o.seed + 1);
  }
  const int64_t prompt = static_cast<int64_t>(ids.prompt.size());
  if (o.prefill > c.context_length() || prompt + o.decode > c.context_length())
    throw moe::Error("--prefill and the prompt (" + std::to_string(prompt) +
                     " tokens) + --decode must fit the context length " +
                     std::to_string(c.context_length()));
  return ids;
}

// ---- measurements ---------------------------------------------------------------------------

// Process CPU seconds per wall second from construction to Get().
struct CpuUtilization {
  double cpu0 = ProcessCpuSeconds();
  Clock::time_point wall0 = Clock::now();
  double Get() const { return (ProcessCpuSeconds() - cpu0) / Seconds(wall0); }
};

// Seconds of each timed prefill repeat, in the three variants TimePrefill times.
struct PrefillRun {
  std::vector<double> head_all, head_last, body;
  double cpu_util = 0;
};

// One warm-up (which also checks the logits, untimed, and faults the mmapped weights in, so a
// cold page cache does not reach the timed repeats), then `repeats` timed prefills.
PrefillRun MeasurePrefill(const moe::MoeModel& model, const std::vector<int32_t>& ids, int repeats,
                          moe::KvCache& cache, LogitCheck& check) {
  TimePrefill(model, ids, cache, &check);
  PrefillRun run;
  const CpuUtilization util;
  for (int r = 0; r < repeats; ++r) {
    const PrefillTimes t = TimePrefill(model, ids, cache);
    run.head_all.push_back(t.body + t.head_all);
    run.head_last.push_back(t.body + t.head_last);
    run.body.push_back(t.body);
  }
  run.cpu_util = util.Get();
  return run;
}

struct DecodeRun {
  std::vector<double> seconds;        // of each timed repeat
  std::vector<int32_t> continuation;  // the warm-up's greedy ids
  double cpu_util = 0;
};

// One warm-up (which records the continuation and checks the logits), then `repeats` timed runs.
DecodeRun MeasureDecode(const moe::MoeModel& model, const std::vector<int32_t>& prompt, int steps,
                        int repeats, moe::KvCache& cache, LogitCheck& check) {
  DecodeRun run;
  TimeDecode(model, prompt, steps, cache, &run.continuation, &check);
  const CpuUtilization util;
  for (int r = 0; r < repeats; ++r) run.seconds.push_back(TimeDecode(model, prompt, steps, cache));
  run.cpu_util = util.Get();
  return run;
}

// Registered, it sends every step down the general pass (a parallel region per product) instead
// of the one-region decode step (core/decode_step.h); it asks for nothing.
class NoEvents : public moe::RoutingObserver {
 public:
  std::vector<moe::HookRequest> Requests() const override { return {}; }
  void OnEvent(const moe::HookEvent&) override {}
};

// The general pass's decode measured in the same run, where the one-region step applies:
// `repeats` pairs of runs, one-region then general, each pair on the same prompt back to back, so
// a machine whose speed drifts (a shared host) moves both sides of each ratio alike. Reports the
// general pass's median tok/s and the median of the pairs' ratios.
void AddGeneralDecode(nlohmann::ordered_json& out, const Options& o, const moe::MoeModel& model,
                      const std::vector<int32_t>& prompt, moe::KvCache& cache) {
  const bool applies = moe::DecodesInOneRegion(model.one_region_plan(), moe::Batch::Single({0}, 1),
                                               model.hooks(), nullptr);
  out["decode_one_region"] = applies;
  if (!applies) return;
  std::vector<double> general, ratios;
  NoEvents none;
  for (int r = 0; r < o.repeats; ++r) {
    const double one_region = TimeDecode(model, prompt, o.decode, cache);
    const moe::HookGuard guard = model.hooks().Add(&none);
    general.push_back(TimeDecode(model, prompt, o.decode, cache));
    ratios.push_back(general.back() / one_region);
  }
  out["decode_general_tok_s"] = Round2(o.decode / Median(general));
  out["one_region_speedup"] = Round2(Median(ratios));
}

// ---- the JSON line --------------------------------------------------------------------------

// Decode against the read bandwidth and prefill against the bf16 GEMM peak, both measured here
// with the thread count just used (the probes' buffers, 1 GiB and about 72 MiB, then count in
// peak_rss_gib, as the bandwidth probe's always has).
void AddHardwareFractions(nlohmann::ordered_json& out, const Options& o, const moe::MoeModel& model,
                          int64_t prompt, double prefill_s, double decode_s) {
  const double bytes_per_token = moe::bench::DecodeBytesPerToken(
      model, prompt + o.decode / 2.0, *moe::ParseKvCacheType(o.kv_cache));
  const double read_gbs = moe::bench::ReadBandwidthGBs();
  const double roofline = read_gbs * 1e9 / bytes_per_token;
  out["decode_mib_per_token"] = Round2(bytes_per_token / (1024.0 * 1024.0));
  out["read_gb_s"] = Round2(read_gbs);
  out["decode_roofline_tok_s"] = Round2(roofline);
  out["decode_of_roofline"] = Round2(o.decode / decode_s / roofline);
  // Against the 32 GB/s read bandwidth quoted for these machines (docs/performance.md).
  out["decode_of_32gbs_roofline"] = Round2(o.decode / decode_s / (32e9 / bytes_per_token));
  // The prefill's useful FLOPs (formula at moe::bench::PrefillFlops: 2 x activated parameters
  // x tokens + causal attention, lm_head over every position) per second.
  const double prefill_gflops =
      moe::bench::PrefillFlops(model.config(), o.prefill) / prefill_s / 1e9;
  const double peak = moe::bench::Bf16GemmPeakGflops();
  out["prefill_gflops"] = Round2(prefill_gflops);
  out["gemm_peak_gflops"] = Round2(peak);
  out["prefill_fraction_of_peak"] =
      peak > 0 ? nlohmann::json(Round3(prefill_gflops / peak)) : nlohmann::json(nullptr);
  out["gemm_isa"] = moe::Bf16MatMulIsa();
  out["amx"] = moe::bench::CpuHasAmxBf16();
}

// One thread count's results, the hardware probes included.
nlohmann::ordered_json ResultJson(const Options& o, int threads, const Loaded& l, int64_t prompt,
                                  const PrefillRun& pre, const DecodeRun& dec,
                                  const LogitCheck& check) {
  const moe::MoeModel& model = *l.loaded.model;
  const moe::ModelConfig& c = model.config();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const double prefill_s = Median(pre.head_all), decode_s = Median(dec.seconds);
  nlohmann::ordered_json out;
  out["engine"] = "moescope";
  out["dtype"] = WeightDType(model);
  out["threads"] = threads;
  out["activations"] = o.activations;
  out["kv_cache"] = o.kv_cache;
  out["prefill_tok_s"] = Round2(o.prefill / prefill_s);
  out["decode_tok_s"] = Round2(o.decode / decode_s);
  out["prefill_last_tok_s"] = Round2(o.prefill / Median(pre.head_last));
  out["prefill_body_tok_s"] = Round2(o.prefill / Median(pre.body));
  out["omp_wait_policy"] = policy ? policy : "unset";
  // Process CPU seconds per wall second over the timed repeats (at most `threads`; well
  // below it when the machine is shared, or when idle threads sleep).
  out["prefill_cpu_util"] = Round2(pre.cpu_util);
  out["decode_cpu_util"] = Round2(dec.cpu_util);
  AddHardwareFractions(out, o, model, prompt, prefill_s, decode_s);
  out["weights"] = o.weight_pages == "mapped" ? "mapped" : "huge_pages";
  out["weight_pages"] = o.weight_pages;
  out["anon_huge_gib"] = Round2(ResidentGiB("AnonHugePages", "/proc/self/smaps_rollup"));
  out["prefill_tokens"] = o.prefill;
  out["decode_tokens"] = o.decode;
  out["prompt_tokens"] = prompt;
  out["prompt_source"] = o.text.empty() ? "random" : "text";
  out["repeats"] = o.repeats;
  out["load_s"] = Round2(l.load_s);
  out["background_copy_s"] = Round2(l.background_copy_s);
  // The process's peak so far (weights touched + activations + KV caches + the probes'
  // buffers; with several --threads values it grows only with the first).
  out["load_rss_gib"] = Round2(l.load_rss_gib);
  out["peak_rss_gib"] = Round2(ResidentGiB("VmHWM"));
  out["logits_finite"] = check.finite;
  out["logits_max_abs"] = Round2(check.max_abs);
  if (!o.text.empty()) out["continuation"] = l.loaded.RequireTokenizer().Decode(dec.continuation);
  out["layers"] = c.num_hidden_layers;
  out["hidden_size"] = c.hidden_size;
  out["model"] = o.model_dir;
  return out;
}

// Loads the model once, then measures and prints one JSON line per --threads value.
void Run(const Options& o) {
  if (o.prefill < 1 || o.decode < 1 || o.prompt_tokens < 1 || o.repeats < 1)
    throw moe::Error("--prefill, --decode, --prompt-tokens and --repeats must be >= 1");
  const Loaded l = LoadTimed(o);
  const moe::MoeModel& model = *l.loaded.model;
  const BenchIds ids = MakeIds(o, l.loaded);
  const int64_t prompt = static_cast<int64_t>(ids.prompt.size());
  const moe::KvCacheType kv_cache = *moe::ParseKvCacheType(o.kv_cache);  // checked by CLI11
  moe::KvCache prefill_cache(model.config(), 1, o.prefill, kv_cache);
  moe::KvCache decode_cache(model.config(), 1, prompt + o.decode, kv_cache);
  for (const int n : o.threads) {
    if (n < 1) throw moe::Error("--threads must be >= 1");
    moe::SetNumThreads(n);
    LogitCheck check;
    const PrefillRun pre = MeasurePrefill(model, ids.prefill, o.repeats, prefill_cache, check);
    const DecodeRun dec =
        MeasureDecode(model, ids.prompt, o.decode, o.repeats, decode_cache, check);
    nlohmann::ordered_json out = ResultJson(o, n, l, prompt, pre, dec, check);
    AddGeneralDecode(out, o, model, ids.prompt, decode_cache);
    std::cout << out.dump() << std::endl;
    if (!check.finite)
      std::cerr << "moescope_bench_engine: warning: non-finite logits; the timings are of "
                   "meaningless numbers\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Prefill and decode tokens/s of the moescope engine (one JSON line per thread count)"};
  Options options;
  AddOptions(app, options);
  CLI11_PARSE(app, argc, argv);
  moe::SetActivationPrecision(options.activations == "bf16" ? moe::ActivationPrecision::kBF16
                                                            : moe::ActivationPrecision::kF32);
  try {
    Run(options);
  } catch (const std::exception& e) {
    std::cerr << "moescope_bench_engine: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
