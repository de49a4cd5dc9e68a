// Non-finite weights: FindNonFinite over every float dtype, LoadModel refusing NaN and infinity
// with the file, tensor and element named, LoadOptions::allow_non_finite_weights (and the CLI's
// --allow-non-finite-weights) loading them anyway, and NaN propagating through attention rather
// than passing for masked scores.
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <catch2/catch.hpp>

#include "core/batch.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/finite_check.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"
#include "tests/unit/test_paths.h"
#include "tests/unit/trace_test_util.h"

namespace fs = std::filesystem;
using Catch::Contains;
using moe::DType;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// `n` elements of `dtype` holding 0.5, 1.5, 2.5, ... as raw little-endian bytes, starting `skew`
// bytes into the buffer (safetensors data need not be aligned).
struct RawTensor {
  std::vector<uint8_t> bytes;
  size_t skew = 0;
  DType dtype = DType::kF32;
  int64_t n = 0;

  RawTensor(DType d, int64_t count, size_t skew_bytes) : skew(skew_bytes), dtype(d), n(count) {
    bytes.resize(skew + static_cast<size_t>(n) * moe::DTypeSize(dtype));
    for (int64_t i = 0; i < n; ++i) Set(i, static_cast<float>(i % 1000) + 0.5f);
  }
  void Set(int64_t i, float value) {
    uint8_t* p = bytes.data() + skew + i * static_cast<int64_t>(moe::DTypeSize(dtype));
    if (dtype == DType::kF32) {
      std::memcpy(p, &value, 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? moe::F32ToF16(value) : moe::F32ToBF16(value);
      std::memcpy(p, &h, 2);
    }
  }
  moe::TensorView view() const { return {dtype, {n}, bytes.data() + skew}; }
};

// Overwrites element `index` of tensor `name` in dir/model.safetensors with `value`, in the
// tensor's own dtype.
void Poison(const fs::path& dir, const std::string& name, int64_t index, float value) {
  const fs::path path = dir / "model.safetensors";
  size_t offset = 0;
  DType dtype = DType::kF32;
  {
    moe::SafetensorsFile file(path.string());
    const moe::TensorView v = file.Tensor(name);
    REQUIRE(index < v.numel());
    dtype = v.dtype;
    offset = static_cast<size_t>(static_cast<const uint8_t*>(v.data) - file.file().data()) +
             static_cast<size_t>(index) * moe::DTypeSize(dtype);
  }
  RawTensor one(dtype, 1, 0);
  one.Set(0, value);
  std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
  out.seekp(static_cast<std::streamoff>(offset));
  out.write(reinterpret_cast<const char*>(one.bytes.data()),
            static_cast<std::streamsize>(one.bytes.size()));
}

fs::path TinyModel() {
  return FixtureDir() / "tiny_moe";
}

const std::string kQProj = "model.layers.0.self_attn.q_proj.weight";

}  // namespace

TEST_CASE("FindNonFinite finds the first NaN or infinity in F32, F16 and BF16", "[weights]") {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (size_t skew : {size_t{0}, size_t{1}, size_t{3}}) {
      INFO(moe::DTypeName(dtype) << ", data " << skew << " bytes past alignment");
      // Over two of the scan's chunks of 2^18 elements, so chunks and their order matter.
      RawTensor t(dtype, 600001, skew);
      REQUIRE_FALSE(moe::FindNonFinite(t.view()).has_value());

      t.Set(600000, -kInf);  // the very last element
      auto found = moe::FindNonFinite(t.view());
      REQUIRE(found);
      REQUIRE(found->index == 600000);
      REQUIRE(moe::NonFiniteName(found->value) == "-inf");

      t.Set(300000, kNaN);  // in the second chunk: found before the later one
      found = moe::FindNonFinite(t.view());
      REQUIRE(found->index == 300000);
      REQUIRE(moe::NonFiniteName(found->value) == "NaN");

      t.Set(7, kInf);  // in the first chunk
      found = moe::FindNonFinite(t.view());
      REQUIRE(found->index == 7);
      REQUIRE(moe::NonFiniteName(found->value) == "+inf");
      REQUIRE_THROWS_WITH(moe::RequireFinite(t.view(), "f.safetensors: tensor 'w'"),
                          Contains("f.safetensors: tensor 'w' holds +inf at element 7"));
    }
  }
}

TEST_CASE("FindNonFinite passes the largest, smallest and signed finite values", "[weights]") {
  const float f32[] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                       std::numeric_limits<float>::denorm_min(), -0.0f, 0.0f};
  REQUIRE_FALSE(moe::FindNonFinite({DType::kF32, {5}, f32}).has_value());
  const uint16_t f16[] = {0x7bff, 0xfbff, 0x0001, 0x8000};  // ±65504, smallest subnormal, -0
  REQUIRE_FALSE(moe::FindNonFinite({DType::kF16, {4}, f16}).has_value());
  const uint16_t bf16[] = {0x7f7f, 0xff7f, 0x0001, 0x8000};  // ±3.39e38, subnormal, -0
  REQUIRE_FALSE(moe::FindNonFinite({DType::kBF16, {4}, bf16}).has_value());
  // Integer tensors have no NaN: 0x7f800000 is a plain I32.
  const int32_t i32[] = {0x7f800000, -1};
  REQUIRE_FALSE(moe::FindNonFinite({DType::kI32, {2}, i32}).has_value());
  REQUIRE_FALSE(moe::FindNonFinite({DType::kF32, {0}, nullptr}).has_value());
}

TEST_CASE("a NaN or infinite weight is refused at load, naming file, tensor and element",
          "[weights][bad-input]") {
  // The three float dtypes a checkpoint may hold: F32 (tiny_moe), BF16 (bf16_weights) and F16
  // (tiny_moe converted).
  const fs::path f16_model = TempDir("weights-f16") / "model";
  moe::ConvertCheckpointToSafetensors(TinyModel(), f16_model, DType::kF16);
  const std::vector<std::pair<std::string, fs::path>> models = {
      {"F32", TinyModel()}, {"BF16", FixtureDir() / "bf16_weights"}, {"F16", f16_model}};
  const std::vector<std::pair<std::string, float>> values = {
      {"NaN", kNaN}, {"+inf", kInf}, {"-inf", -kInf}};
  const std::vector<std::string> tensors = {kQProj,
                                            "model.layers.1.mlp.calculator.experts.weight_down.3",
                                            "model.layers.0.mlp.gate.gate_network.0.weight",
                                            "model.norm.weight", "model.embed_tokens.weight"};
  int case_number = 0;
  for (const auto& [dtype, source] : models) {
    for (const std::string& tensor : tensors) {
      for (const auto& [value_name, value] : values) {
        INFO(dtype << " " << tensor << " " << value_name);
        const fs::path dir = CopyModel(source, "weights-poisoned-" + std::to_string(case_number++));
        Poison(dir, tensor, 5, value);
        const std::string file = (dir / "model.safetensors").string();
        REQUIRE_THROWS_WITH(moe::LoadModel(dir),
                            Contains(file + ": tensor " + moe::Quoted(tensor) + " holds " +
                                     value_name + " at element 5"));
        const moe::LoadedModel loaded = moe::LoadModel(dir, {.allow_non_finite_weights = true});
        REQUIRE(loaded.model != nullptr);
      }
    }
  }
}

TEST_CASE("weights loaded with NaN in q_proj give NaN outputs, not finite ones",
          "[weights][bad-input]") {
  // A NaN in q_proj makes whole rows of attention scores NaN. Taken for rows with no allowed
  // key, they once attended uniformly and gave finite, lower NLL; now NaN propagates as in
  // PyTorch.
  const fs::path dir = CopyModel(TinyModel(), "weights-nan-q");
  const moe::Batch batch = moe::Batch::Single({1, 5, 9, 13, 2, 7});
  const moe::LoadedModel clean = moe::LoadModel(dir);
  for (float h : clean.model->Forward(batch)) REQUIRE(std::isfinite(h));

  const moe::LoadedModel m = moe::LoadModel(TinyModel());
  const int64_t hidden = m.config().hidden_size;
  for (int64_t row : {int64_t{0}, int64_t{3}}) {
    INFO("q_proj row " << row << " all NaN");
    const fs::path poisoned = CopyModel(TinyModel(), "weights-nan-q-" + std::to_string(row));
    for (int64_t col = 0; col < hidden; ++col) Poison(poisoned, kQProj, row * hidden + col, kNaN);
    const moe::LoadedModel nan_model = moe::LoadModel(poisoned, {.allow_non_finite_weights = true});
    const std::vector<float> out = nan_model.model->Forward(batch);
    for (float h : out) REQUIRE(std::isnan(h));
  }
}

TEST_CASE("the CLI refuses non-finite weights unless --allow-non-finite-weights is given",
          "[weights][bad-input][cli]") {
  const fs::path dir = CopyModel(TinyModel(), "weights-cli");
  Poison(dir, kQProj, 123, kNaN);
  const std::string model = " --model " + trace_test::Quote(dir.string());
  const std::string args = " --text 'The license is granted'";
  const trace_test::CommandResult refused =
      trace_test::RunCommand(trace_test::Cli() + " score" + model + args);
  INFO(refused.output);
  REQUIRE(refused.status == 1);
  REQUIRE_THAT(refused.output, Contains("moescope: error: " + (dir / "model.safetensors").string() +
                                        ": tensor '" + kQProj + "' holds NaN at element 123"));
  REQUIRE(std::count(refused.output.begin(), refused.output.end(), '\n') == 1);

  const trace_test::CommandResult allowed = trace_test::RunCommand(
      trace_test::Cli() + " score --allow-non-finite-weights" + model + args);
  INFO(allowed.output);
  REQUIRE_THAT(allowed.output, !Contains("holds NaN"));
}
