// The bf16 KV cache: what it stores and how much memory it takes, its logits against the PyTorch
// reference run with bf16 keys and values, and its accuracy against the fp32 cache on the
// bundled model (the figures of docs/performance.md, "A bf16 KV cache").
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/generate.h"
#include "core/heads.h"
#include "core/kv_cache.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"
#include "core/tensor.h"
#include "core/tokenizer.h"
#include "reference_case.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

using StepLogits = std::vector<std::vector<float>>;  // [steps][V]

std::filesystem::path BundledModel() {
  return trace_test::SourceDir() / "datasets/models/default";
}

// Next-token logits after `prompt` and after each of `tokens` fed as one decode step, through a
// cache of `type`: 1 + tokens.size() rows.
StepLogits ForcedStepLogits(const MoeModel& model, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& tokens, KvCacheType type) {
  const int64_t h = model.config().hidden_size, n = static_cast<int64_t>(prompt.size());
  KvCache cache(model.config(), 1, n + static_cast<int64_t>(tokens.size()), type);
  std::vector<float> hidden = model.Forward(Batch::Single(prompt), &cache);
  StepLogits rows = {LmLogits(model, hidden.data() + (n - 1) * h, 1)};
  for (const int32_t token : tokens) {
    hidden = model.Forward(Batch::Single({token}, static_cast<int32_t>(cache.length())), &cache);
    rows.push_back(LmLogits(model, hidden.data(), 1));
  }
  return rows;
}

// The same from tests/reference/forced_steps_reference.py (PyTorch, float32).
StepLogits ReferenceStepLogits(const std::vector<int32_t>& prompt,
                               const std::vector<int32_t>& tokens, bool kv_bf16,
                               const std::filesystem::path& dir) {
  auto join = [](const std::vector<int32_t>& ids) {
    std::string s;
    for (const int32_t id : ids) s.append(std::to_string(id)).append(",");
    return s;
  };
  const std::filesystem::path out = dir / (kv_bf16 ? "bf16.safetensors" : "f32.safetensors");
  const trace_test::CommandResult r = trace_test::RunCommand(
      "OMP_NUM_THREADS=1 /usr/bin/python3 " +
      trace_test::Quote(
          (trace_test::SourceDir() / "tests/reference/forced_steps_reference.py").string()) +
      " " + trace_test::Quote(BundledModel().string()) + " --prompt " + join(prompt) +
      " --tokens '" + join(tokens) + "' --out " + trace_test::Quote(out.string()) +
      (kv_bf16 ? " --kv-bf16" : ""));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const SafetensorsFile file(out.string());
  const TensorView t = file.Tensor("step_logits");
  REQUIRE(t.shape.size() == 2);
  REQUIRE(t.shape[0] == static_cast<int64_t>(tokens.size()) + 1);
  const std::vector<float> all = testing::AsFloats(t);
  StepLogits rows;
  for (int64_t i = 0; i < t.shape[0]; ++i)
    rows.emplace_back(all.begin() + i * t.shape[1], all.begin() + (i + 1) * t.shape[1]);
  return rows;
}

double MaxAbs(const StepLogits& rows) {
  double m = 0;
  for (const auto& row : rows)
    for (const float x : row) m = std::max(m, std::fabs(double(x)));
  return m;
}

double MaxAbsDiff(const StepLogits& a, const StepLogits& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::fabs(double(a[i][j]) - b[i][j]));
  }
  return m;
}

// The first `n` tokens of the first document of a domain of the bundled sample corpus.
std::vector<int32_t> SamplePrompt(const Tokenizer& tokenizer, const std::string& domain, size_t n) {
  std::ifstream in(trace_test::SourceDir() / "datasets/sample" / (domain + ".jsonl"));
  std::string line;
  REQUIRE(std::getline(in, line));
  std::vector<int32_t> ids = tokenizer.Encode(nlohmann::json::parse(line).at("text"));
  REQUIRE(ids.size() >= n);
  ids.resize(n);
  return ids;
}

}  // namespace

TEST_CASE("a bf16 KV cache rounds to nearest even and holds half the bytes", "[kv-cache]") {
  const LoadedModel m = LoadModel(BundledModel());
  const ModelConfig& c = m.config();
  const int64_t d = c.head_dim(), capacity = 5;
  KvCache f32(c, 2, capacity), bf16(c, 2, capacity, KvCacheType::kBF16);
  const size_t elements = static_cast<size_t>(2 * c.num_hidden_layers * 2 * c.num_key_value_heads *
                                              capacity * d);  // k and v
  CHECK(f32.bytes() == elements * 4);
  CHECK(bf16.bytes() == elements * 2);

  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: the tie goes to the even 1.
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: the tie goes to the even 1 + 2^-6.
  std::vector<float> key(static_cast<size_t>(d), 0.1f), value(static_cast<size_t>(d), -3.3f);
  key[0] = 1.0f + std::ldexp(1.0f, -8);
  key[1] = 1.0f + 3 * std::ldexp(1.0f, -8);
  key[2] = 1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20);  // above the tie: rounds up
  for (KvCache* cache : {&f32, &bf16}) cache->Store(3, 1, 2, 4, key.data(), value.data());
  ScratchBuffer<float> scratch_f32, scratch_bf16, scratch_values;
  const float* k32 = f32.Keys(3, 1, 2, capacity, scratch_f32) + 4 * d;
  const float* k16 = bf16.Keys(3, 1, 2, capacity, scratch_bf16) + 4 * d;
  CHECK(k16[0] == 1.0f);
  CHECK(k16[1] == 1.0f + std::ldexp(1.0f, -6));
  CHECK(k16[2] == 1.0f + std::ldexp(1.0f, -7));
  const float* v16 = bf16.Values(3, 1, 2, capacity, scratch_values) + 4 * d;
  for (int64_t i = 0; i < d; ++i) {
    CHECK(k32[i] == key[i]);  // the fp32 cache keeps them exactly
    CHECK(v16[i] == BF16ToF32(F32ToBF16(value[i])));
    if (i >= 3) CHECK(k16[i] == BF16ToF32(F32ToBF16(0.1f)));
  }

  // Growing keeps what is cached and the half size.
  bf16.Advance(capacity);
  bf16.Reserve(capacity + 1);
  CHECK(bf16.bytes() == elements / capacity * static_cast<size_t>(bf16.capacity()) * 2);
  CHECK(bf16.Keys(3, 1, 2, capacity, scratch_bf16)[4 * d + 1] == 1.0f + std::ldexp(1.0f, -6));

  CHECK(ParseKvCacheType("bf16") == KvCacheType::kBF16);
  CHECK(ParseKvCacheType("f32") == KvCacheType::kF32);
  CHECK_FALSE(ParseKvCacheType("f8").has_value());
}

// Tolerance: engine and reference compute the same bf16-rounded keys and values from fp32
// numbers that differ in the last bits, so a few elements may round to the neighbouring bf16
// value; the logits agree within 1e-3 of the logit scale (max |logit|). The fp32 reference must
// be further than that from the engine's bf16-cache logits, or the test would not show that the
// rounding is applied.
TEST_CASE("bf16-cache logits equal the PyTorch reference with bf16 keys and values",
          "[kv-cache][reference]") {
  const LoadedModel m = LoadModel(BundledModel());
  const std::vector<int32_t> prompt = SamplePrompt(*m.tokenizer, "legal", 96);
  GenerationOptions options;
  options.max_new_tokens = 8;
  options.stop_at_eos = false;
  options.kv_cache = KvCacheType::kBF16;
  const GenerationResult r = Generate(*m.model, prompt, options, {}, /*keep_step_logits=*/true);
  REQUIRE(r.step_logits.size() == 8);
  // The reference is fed the tokens the engine chose, so both see the same context every step.
  const std::vector<int32_t> fed(r.tokens.begin(), r.tokens.end() - 1);
  const std::filesystem::path dir = TempDir("kv_cache_reference");
  const StepLogits want_bf16 = ReferenceStepLogits(prompt, fed, true, dir);
  const StepLogits want_f32 = ReferenceStepLogits(prompt, fed, false, dir);
  const double scale = MaxAbs(want_bf16), tolerance = 1e-3 * scale;
  const double err_bf16 = MaxAbsDiff(r.step_logits, want_bf16);
  const double err_f32 = MaxAbsDiff(r.step_logits, want_f32);
  std::cout << "bf16 KV cache against the reference: logit scale " << scale
            << ", max |engine bf16 - reference bf16| " << err_bf16
            << ", max |engine bf16 - reference f32| " << err_f32 << "\n";
  INFO("logit scale " << scale << ", max |engine bf16 - reference bf16| " << err_bf16
                      << ", max |engine bf16 - reference f32| " << err_f32);
  CHECK(err_bf16 <= tolerance);
  CHECK(err_f32 > tolerance);
  // The engine's own fp32 cache stays with the fp32 reference.
  CHECK(MaxAbsDiff(ForcedStepLogits(*m.model, prompt, fed, KvCacheType::kF32), want_f32) <=
        tolerance);
}

// Greedy generation from the first 96 tokens of one document of four domains, fp32 against bf16
// cache. Bound: each key and value moves by at most 2^-8 of itself (bf16 keeps 8 significant
// bits); fed the same tokens, the logits may move by at most 8 · 2^-8 of their scale (max
// |logit|), i.e. the six layers amplify the relative rounding at most eightfold (observed: 3.4).
// The figures are printed for docs/performance.md.
TEST_CASE("bf16 KV cache accuracy against the fp32 cache on the bundled model", "[kv-cache]") {
  const LoadedModel m = LoadModel(BundledModel());
  constexpr int kNew = 64;
  int same_tokens = 0, total_tokens = 0, before_first_difference = 0;
  double worst = 0, worst_relative = 0;
  for (const char* domain : {"books", "code", "legal", "techdocs"}) {
    INFO("domain " << domain);
    const std::vector<int32_t> prompt = SamplePrompt(*m.tokenizer, domain, 96);
    GenerationOptions options;
    options.max_new_tokens = kNew;
    options.stop_at_eos = false;
    const GenerationResult f32 = Generate(*m.model, prompt, options, {}, true);
    options.kv_cache = KvCacheType::kBF16;
    const GenerationResult bf16 = Generate(*m.model, prompt, options);
    REQUIRE(f32.tokens.size() == kNew);
    REQUIRE(bf16.tokens.size() == kNew);
    int same = 0;
    for (int i = 0; i < kNew; ++i) same += f32.tokens[i] == bf16.tokens[i];
    const int64_t first_difference =
        std::mismatch(f32.tokens.begin(), f32.tokens.end(), bf16.tokens.begin()).first -
        f32.tokens.begin();
    total_tokens += kNew;
    // Teacher-forced: the bf16 cache fed the fp32 run's tokens, so every step has one context.
    const std::vector<int32_t> fed(f32.tokens.begin(), f32.tokens.end() - 1);
    const StepLogits forced = ForcedStepLogits(*m.model, prompt, fed, KvCacheType::kBF16);
    const double diff = MaxAbsDiff(f32.step_logits, forced), scale = MaxAbs(f32.step_logits);
    CHECK(diff > 0);  // the rounding reaches the logits
    CHECK(diff <= 8 * std::ldexp(scale, -8));
    std::cout << domain << ": identical tokens " << same << "/" << kNew << ", first difference at "
              << first_difference << ", max |dlogit| " << diff << " of logit scale " << scale
              << "\n";
    same_tokens += same;
    before_first_difference += static_cast<int>(first_difference);
    worst = std::max(worst, diff);
    worst_relative = std::max(worst_relative, diff / scale);
  }
  std::cout << "bf16 KV cache, bundled model, 4 prompts x " << kNew
            << " greedy tokens: identical tokens " << same_tokens << "/" << total_tokens << " ("
            << before_first_difference << " before each prompt's first difference)"
            << ", max |dlogit| " << worst << " (" << worst_relative << " of the logit scale)\n";
}

// A decode step reads a bf16 cache through its own kernel (dot products and the weighted sum on
// the bf16 rows); a prefill widens them for the GEMMs of the blocked path. Both read the same
// rounded keys and values, so one forward over the whole sequence gives each position the logits
// of the step that decoded it, here with GQA (4 heads, 2 KV heads) and a sliding window of 6 that
// the 18 tokens pass. Tolerance: 1e-4 of the logit scale (observed 4e-7: fp32 summation order),
// for keys and values that a batched and a one-token projection may round to neighbouring bf16
// values; the fp32 cache is 7e-4 of the scale away.
TEST_CASE("bf16 cache: decode steps equal one forward over the sequence (GQA, sliding window)",
          "[kv-cache]") {
  const LoadedModel m = LoadModel(FixtureDir() / "mixtral_generation");
  REQUIRE(m.config().SlidingWindow(0) == 6);
  const std::vector<int32_t> prompt = {1, 155, 247, 103, 40, 172, 228, 132};
  const std::vector<int32_t> tokens = {17, 291, 88, 5, 240, 63, 199, 12, 77, 150};
  const StepLogits steps = ForcedStepLogits(*m.model, prompt, tokens, KvCacheType::kBF16);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), tokens.begin(), tokens.end());
  const int64_t n = static_cast<int64_t>(all.size()), vocab = m.config().vocab_size;
  KvCache cache(m.config(), 1, n, KvCacheType::kBF16);
  const std::vector<float> hidden = m.model->Forward(Batch::Single(all), &cache);
  const std::vector<float> logits = LmLogits(*m.model, hidden.data(), n);
  StepLogits whole;
  for (int64_t i = static_cast<int64_t>(prompt.size()) - 1; i < n; ++i)
    whole.emplace_back(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
  const double scale = MaxAbs(whole);
  CHECK(MaxAbsDiff(steps, whole) <= 1e-4 * scale);
  // Against the fp32 cache the same steps differ by more: the rounding is applied in both paths.
  CHECK(MaxAbsDiff(ForcedStepLogits(*m.model, prompt, tokens, KvCacheType::kF32), whole) >
        1e-4 * scale);
}
