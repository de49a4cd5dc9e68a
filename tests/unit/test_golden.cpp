// The engine against upstream's outputs in tests/golden (README there: formats, tolerances).
#include <catch2/catch.hpp>

#include "reference_case.h"
#include "test_paths.h"

using namespace moe;
using namespace moe::testing;

TEST_CASE("golden forward cases match upstream", "[golden]") {
  for (const char* name : {"tiny_mlp_gate", "gqa_linear_gate", "batch_padding", "generation"}) {
    SECTION(name) {
      const int compared = CheckForwardCase(GoldenDir() / name);
      // logits, final_hidden, embeddings and 9 tensors per layer at least.
      CHECK(compared >= 3 + 2 * 9);
    }
  }
}

TEST_CASE("batch_padding routing statistics count padding rows as upstream does", "[golden]") {
  const auto dir = GoldenDir() / "batch_padding";
  const LoadedModel m = LoadModel(dir);
  const Batch batch = BatchFromInputs(ReadJson(dir / "inputs.json"));
  const std::vector<OwnedTensor> got = RecordForward(*m.model, batch);
  const SafetensorsFile expected((dir / "expected.safetensors").string());
  int checked = 0;
  for (const OwnedTensor& t : got) {
    if (t.name.find(".load") == std::string::npos &&
        t.name.find(".importance") == std::string::npos)
      continue;
    ExpectClose(t.name, t.view(), expected.Tensor(t.name));
    ++checked;
  }
  CHECK(checked == 2 * m.config().num_hidden_layers);
}

TEST_CASE("golden greedy generation through the KV cache", "[golden][generation]") {
  const auto dir = GoldenDir() / "generation";
  const LoadedModel m = LoadModel(dir);
  const nlohmann::json in = ReadJson(dir / "inputs.json");
  const auto prompt = in.at("input_ids").at(0).get<std::vector<int32_t>>();
  const SafetensorsFile expected((dir / "expected.safetensors").string());

  GenerationOptions options;
  options.max_new_tokens = in.at("max_new_tokens").get<int>();
  options.stop_at_eos = false;
  const GenerationResult r = Generate(*m.model, prompt, options, {}, /*keep_step_logits=*/true);

  const TensorView want_ids = expected.Tensor("generated_ids");
  const std::vector<float> ids = AsFloats(want_ids);
  REQUIRE(r.tokens.size() == ids.size());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(r.tokens[i] == static_cast<int32_t>(ids[i]));

  const int64_t v = m.config().vocab_size;
  std::vector<float> steps;
  for (const auto& s : r.step_logits) steps.insert(steps.end(), s.begin(), s.end());
  const OwnedTensor got_steps = MakeF32Tensor(
      "step_logits", {1, static_cast<int64_t>(r.step_logits.size()), v}, steps.data());
  ExpectClose("step_logits", got_steps.view(), expected.Tensor("step_logits"));

  // One forward without cache over the whole sequence gives the same logits.
  const std::vector<float> seq = AsFloats(expected.Tensor("sequence_ids"));
  std::vector<int32_t> full(seq.begin(), seq.end() - 1);
  const Batch batch = Batch::Single(full);
  const std::vector<float> hidden = m.model->Forward(batch);
  const std::vector<float> logits = LmLogits(*m.model, hidden.data(), batch.tokens());
  const OwnedTensor got_full =
      MakeF32Tensor("full_logits", {1, static_cast<int64_t>(full.size()), v}, logits.data());
  ExpectClose("full_logits", got_full.view(), expected.Tensor("full_logits"));
}
