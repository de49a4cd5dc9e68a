// The engine against the project's PyTorch reference (tests/reference/) on what the golden
// cases do not cover. Regenerate with /usr/bin/python3 tests/reference/make_fixtures.py.
#include <catch2/catch.hpp>

#include "reference_case.h"
#include "test_paths.h"

using namespace moe;
using namespace moe::testing;

TEST_CASE("reference fixtures match the PyTorch reference", "[fixtures]") {
  // Expected tensors per case: the body's and heads' outputs, every layer's routing.
  for (const char* name :
       {"uneven_experts", "rope_linear", "rope_dynamic", "bf16_weights", "softmax_off",
        "tied_embeddings", "seq_classification", "question_answering", "sharded_safetensors",
        "sharded_bin", "dense_llama", "generation_gqa"}) {
    SECTION(name) {
      const int compared = CheckForwardCase(FixtureDir() / name);
      CHECK(compared >= 8);
    }
  }
}

TEST_CASE("bf16 weights stay bf16 in memory", "[fixtures]") {
  const LoadedModel m = LoadModel(FixtureDir() / "bf16_weights");
  CHECK(m.model->weights().embed.dtype == DType::kBF16);
  CHECK(m.model->weights().layers[0].experts[0].down.dtype == DType::kBF16);
}

TEST_CASE("sequence classification pools the token before the first pad", "[fixtures]") {
  const auto dir = FixtureDir() / "seq_classification";
  const LoadedModel m = LoadModel(dir);
  const Batch batch = BatchFromInputs(ReadJson(dir / "inputs.json"));
  const SequenceClassification cls = ClassifySequences(*m.model, batch, m.model->Forward(batch));
  const SafetensorsFile expected((dir / "expected.safetensors").string());
  const std::vector<float> want = AsFloats(expected.Tensor("pooled_index"));
  REQUIRE(cls.pooled_index.size() == want.size());
  for (size_t b = 0; b < want.size(); ++b) CHECK(cls.pooled_index[b] == want[b]);
  // Row 1 is right-padded: it must pool at its last real token, not at the end.
  CHECK(cls.pooled_index[1] < batch.seq_len - 1);
}

TEST_CASE("greedy generation with GQA and a linear gate", "[fixtures][generation]") {
  CheckGenerationCase(FixtureDir() / "generation_gqa");
}
