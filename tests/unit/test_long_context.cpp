// Sequences past max_position_embeddings x factor: dynamic NTK and linear RoPE scaling have no
// length limit (as upstream), the KV cache grows, and the results match the PyTorch reference.
// Fixtures: tests/fixtures/rope_dynamic_long and generation_dynamic_long (make_fixtures.py).
#include <catch2/catch.hpp>

#include "core/error.h"
#include "reference_case.h"
#include "test_paths.h"

using namespace moe;
using namespace moe::testing;

namespace {

using Catch::Matchers::Contains;

std::vector<int32_t> IdsRow(const TensorView& t) {
  std::vector<int32_t> ids;
  for (float v : AsFloats(t)) ids.push_back(static_cast<int32_t>(v));
  return ids;
}

// Logits [1, rows, V] of one forward over `ids` (no cache), as a tensor to compare.
OwnedTensor FullLogits(const MoeModel& model, const std::vector<int32_t>& ids) {
  const std::vector<float> hidden = model.Forward(Batch::Single(ids));
  const int64_t rows = static_cast<int64_t>(ids.size());
  const std::vector<float> logits = LmLogits(model, hidden.data(), rows);
  return MakeF32Tensor("full_logits", {1, rows, model.config().vocab_size}, logits.data());
}

OwnedTensor StepLogits(const std::vector<std::vector<float>>& steps, int vocab) {
  std::vector<float> flat;
  for (const auto& s : steps) flat.insert(flat.end(), s.begin(), s.end());
  return MakeF32Tensor("step_logits", {1, static_cast<int64_t>(steps.size()), vocab}, flat.data());
}

}  // namespace

TEST_CASE("dynamic NTK RoPE at 2.5 x max_position_embeddings matches the reference",
          "[fixtures][long_context]") {
  const auto dir = FixtureDir() / "rope_dynamic_long";
  const LoadedModel m = LoadModel(dir);
  // The input is longer than max_position_embeddings x factor, the limit before.
  REQUIRE(m.config().max_position_embeddings == 16);
  REQUIRE(m.config().context_length() == 32);
  REQUIRE(m.config().max_sequence_length() > 40);
  CHECK(CheckForwardCase(dir) >= 8);  // logits, every layer's activations; routing exactly
}

TEST_CASE("greedy generation with dynamic NTK decodes past max_position_embeddings x factor",
          "[fixtures][generation][long_context]") {
  const auto dir = FixtureDir() / "generation_dynamic_long";
  const LoadedModel m = LoadModel(dir);
  const nlohmann::json in = ReadJson(dir / "inputs.json");
  const SafetensorsFile expected((dir / "expected.safetensors").string());
  const int vocab = m.config().vocab_size;
  const std::vector<int32_t> prompt = in.at("input_ids").at(0).get<std::vector<int32_t>>();
  const std::vector<int32_t> sequence = IdsRow(expected.Tensor("sequence_ids"));
  REQUIRE(sequence.size() == 40);  // 2.5 x max_position_embeddings, past 16 x 2 = 32

  SECTION("the prefill's tensors") {
    CHECK(CheckForwardCase(dir) >= 8);
  }

  SECTION("Generate: each step's theta follows its key length, as the reference's") {
    GenerationOptions options;
    options.max_new_tokens = in.at("max_new_tokens").get<int>();
    options.stop_at_eos = false;
    const GenerationResult r = Generate(*m.model, prompt, options, {}, true);
    const std::vector<int32_t> want = IdsRow(expected.Tensor("generated_ids"));
    REQUIRE(r.tokens == want);
    ExpectClose("step_logits", StepLogits(r.step_logits, vocab).view(),
                expected.Tensor("step_logits"));
  }

  SECTION("a KV cache too small for the sequence grows and keeps what it holds") {
    KvCache cache(m.config(), 1, 4);
    std::vector<std::vector<float>> steps;
    std::vector<float> hidden = m.model->Forward(Batch::Single(prompt), &cache);
    steps.push_back(
        LmLogits(*m.model, hidden.data() + (prompt.size() - 1) * m.config().hidden_size, 1));
    for (size_t t = prompt.size(); t + 1 < sequence.size(); ++t) {
      hidden = m.model->Forward(Batch::Single({sequence[t]}, static_cast<int32_t>(t)), &cache);
      steps.push_back(LmLogits(*m.model, hidden.data(), 1));
    }
    CHECK(cache.length() == 39);
    CHECK(cache.capacity() >= 39);
    ExpectClose("step_logits", StepLogits(steps, vocab).view(), expected.Tensor("step_logits"));
  }

  SECTION("one forward over the whole sequence uses one theta, as the reference's") {
    const std::vector<int32_t> head(sequence.begin(), sequence.end() - 1);
    ExpectClose("full_logits", FullLogits(*m.model, head).view(), expected.Tensor("full_logits"));
  }
}

TEST_CASE("linear RoPE scaling: decoding past max_position_embeddings x factor equals one forward",
          "[fixtures][generation][long_context]") {
  // Linear scaling divides positions whatever the length, so the cached decode and a single
  // forward over the same tokens agree at every step.
  const LoadedModel m = LoadModel(FixtureDir() / "rope_linear");
  REQUIRE(m.config().context_length() == 32);
  const nlohmann::json in = ReadJson(FixtureDir() / "rope_linear" / "inputs.json");
  const std::vector<int32_t> prompt = in.at("input_ids").at(0).get<std::vector<int32_t>>();
  GenerationOptions options;
  options.max_new_tokens = 16;  // 24 + 16 = 40 tokens
  options.stop_at_eos = false;
  const GenerationResult r = Generate(*m.model, prompt, options, {}, true);
  REQUIRE(r.tokens.size() == 16);

  std::vector<int32_t> sequence = prompt;
  sequence.insert(sequence.end(), r.tokens.begin(), r.tokens.end() - 1);  // 39 tokens
  const OwnedTensor full = FullLogits(*m.model, sequence);
  const int vocab = m.config().vocab_size;
  const float* last_rows =
      static_cast<const float*>(full.view().data) + (prompt.size() - 1) * vocab;
  const OwnedTensor want = MakeF32Tensor("full_logits", {1, 16, vocab}, last_rows);
  ExpectClose("step_logits", StepLogits(r.step_logits, vocab).view(), want.view());
}

TEST_CASE("without RoPE scaling, max_position_embeddings stays a limit", "[long_context]") {
  const LoadedModel m = LoadModel(FixtureDir() / "uneven_experts");
  REQUIRE(m.config().rope_scaling == RopeScaling::kNone);
  REQUIRE(m.config().max_sequence_length() == 64);
  CHECK_THROWS_WITH(m.model->Forward(Batch::Single(std::vector<int32_t>(65, 5))),
                    Contains("65 tokens exceed the context length of 64"));
  // Generation stops when the sequence fills the context.
  GenerationOptions options;
  options.max_new_tokens = 10;
  options.stop_at_eos = false;
  const GenerationResult r = Generate(*m.model, std::vector<int32_t>(60, 5), options);
  CHECK(r.tokens.size() == 5);
}
