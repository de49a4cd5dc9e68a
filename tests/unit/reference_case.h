#pragma once
// Runs one reference case folder (config.json, model.*, inputs.json, expected.safetensors; the
// format of tests/golden/README.md) through the engine and compares every tensor the
// expected file and the engine both have.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/batch.h"
#include "core/forward_record.h"
#include "core/generate.h"
#include "core/heads.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"

namespace moe::testing {

// The golden README's float32 tolerance: |got - want| <= 1e-4 + 1e-4 * |want|.
constexpr double kAbsTol = 1e-4, kRelTol = 1e-4;

inline nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

inline std::vector<float> AsFloats(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::kI32) {
    const auto* p = static_cast<const int32_t*>(t.data);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(p[i]);
  } else {
    ToF32(t.dtype, t.data, v.data(), v.size());
  }
  return v;
}

inline Batch BatchFromInputs(const nlohmann::json& in) {
  using Rows = std::vector<std::vector<int32_t>>;
  return Batch::FromRows(in.at("input_ids").get<Rows>(), in.at("attention_mask").get<Rows>(),
                         in.at("position_ids").get<Rows>());
}

// Compares `got` with `want`; rows_real (per leading token row) limits the comparison to real
// tokens when given. Integer tensors must match exactly.
inline void ExpectClose(const std::string& name, const TensorView& got, const TensorView& want,
                        const std::vector<uint8_t>& row_real = {}) {
  INFO("tensor " << name);
  REQUIRE(got.shape == want.shape);
  const std::vector<float> g = AsFloats(got), w = AsFloats(want);
  const bool exact = want.dtype == DType::kI32;
  const size_t rows = row_real.empty() ? 1 : row_real.size();
  const size_t per_row = g.size() / rows;
  double worst = 0;
  size_t mismatches = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!row_real.empty() && !row_real[i / per_row]) continue;
    const double err = std::fabs(double(g[i]) - w[i]);
    const double allowed = exact ? 0.0 : kAbsTol + kRelTol * std::fabs(double(w[i]));
    worst = std::max(worst, err);
    if (err > allowed) ++mismatches;
  }
  INFO("max abs difference " << worst);
  CHECK(mismatches == 0);
}

// Runs the forward pass on inputs.json and compares every expected tensor the engine produced.
// compare_padding_stats: load/importance include padding rows as upstream counts them.
inline int CheckForwardCase(const std::filesystem::path& dir) {
  const LoadedModel m = LoadModel(dir);
  const nlohmann::json in = ReadJson(dir / "inputs.json");
  const Batch batch = BatchFromInputs(in);
  const std::vector<OwnedTensor> got = RecordForward(*m.model, batch, {.activations = true});
  const SafetensorsFile expected((dir / "expected.safetensors").string());
  std::vector<uint8_t> real(batch.mask.begin(), batch.mask.end());
  int compared = 0;
  for (const OwnedTensor& t : got) {
    if (!expected.Contains(t.name)) continue;
    const TensorView want = expected.Tensor(t.name);
    // Token-major tensors are compared on real tokens only; upstream's padding rows depend on
    // its mask arithmetic (golden README, "Padding rows").
    const bool per_token =
        !want.shape.empty() && (want.shape[0] == batch.tokens() ||
                                (want.shape.size() >= 2 && want.shape[0] == batch.batch_size &&
                                 want.shape[1] == batch.seq_len));
    ExpectClose(t.name, t.view(), want, per_token ? real : std::vector<uint8_t>{});
    ++compared;
  }
  return compared;
}

// Greedy generation of inputs.json's prompt through the KV cache: the generated ids must equal
// generated_ids and every step's logits step_logits.
inline void CheckGenerationCase(const std::filesystem::path& dir) {
  const LoadedModel m = LoadModel(dir);
  const nlohmann::json in = ReadJson(dir / "inputs.json");
  const SafetensorsFile expected((dir / "expected.safetensors").string());
  GenerationOptions options;
  options.max_new_tokens = in.at("max_new_tokens").get<int>();
  options.stop_at_eos = false;
  const GenerationResult r =
      Generate(*m.model, in.at("input_ids").at(0).get<std::vector<int32_t>>(), options, {}, true);
  const std::vector<float> want = AsFloats(expected.Tensor("generated_ids"));
  REQUIRE(r.tokens.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(r.tokens[i] == static_cast<int32_t>(want[i]));
  std::vector<float> steps;
  for (const auto& s : r.step_logits) steps.insert(steps.end(), s.begin(), s.end());
  const OwnedTensor got = MakeF32Tensor(
      "step_logits", {1, static_cast<int64_t>(r.step_logits.size()), m.config().vocab_size},
      steps.data());
  ExpectClose("step_logits", got.view(), expected.Tensor("step_logits"));
}

}  // namespace moe::testing
