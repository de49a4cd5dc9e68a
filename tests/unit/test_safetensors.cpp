// SafetensorsFile, WriteSafetensors and the dtype helpers of core/tensor.h.
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/safetensors_file.h"
#include "core/tensor.h"
#include "tests/unit/test_paths.h"

namespace fs = std::filesystem;
using Catch::Contains;
using moe::DType;

namespace {

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file with this exact header text followed by `data_bytes` zero bytes.
fs::path WriteRaw(const fs::path& dir, const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header + std::string(data_bytes, '\0');
  const fs::path path = dir / "bad.safetensors";
  WriteBytes(path, bytes);
  return path;
}

moe::OwnedTensor Filled(std::string name, DType dtype, moe::Shape shape) {
  moe::OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.resize(t.view().nbytes());
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  return t;
}

}  // namespace

TEST_CASE("dtype names, sizes and shapes", "[safetensors]") {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kI16,
                  DType::kU8}) {
    REQUIRE(moe::ParseDType(moe::DTypeName(d)) == d);
  }
  REQUIRE_FALSE(moe::ParseDType("F64").has_value());
  REQUIRE(moe::DTypeSize(DType::kBF16) == 2);
  REQUIRE(moe::DTypeSize(DType::kI64) == 8);
  REQUIRE(moe::ShapeString({4, 64}) == "[4, 64]");
  REQUIRE(moe::ShapeString({}) == "[]");
  REQUIRE(moe::NumElements({}) == 1);
  REQUIRE(moe::NumElements({3, 0, 2}) == 0);
}

TEST_CASE("F16 conversion is exact both ways and rounds to nearest even", "[safetensors]") {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = moe::F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      REQUIRE(std::isnan(moe::F16ToF32(moe::F32ToF16(f))));
    } else {
      REQUIRE(moe::F32ToF16(f) == h);
    }
  }
  REQUIRE(moe::F16ToF32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  REQUIRE(moe::F16ToF32(0x7bff) == 65504.0f);
  REQUIRE(moe::F32ToF16(65519.0f) == 0x7bff);
  REQUIRE(moe::F32ToF16(65520.0f) == 0x7c00);  // halfway to 65536: rounds to inf
  REQUIRE(moe::F32ToF16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // tie, even stays
  REQUIRE(moe::F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie, odd rounds up
  REQUIRE(moe::F32ToF16(std::ldexp(1.0f, -25)) == 0x0000);             // tie with zero
  REQUIRE(moe::F32ToF16(std::ldexp(1.5f, -25)) == 0x0001);
  REQUIRE(moe::F32ToF16(-std::numeric_limits<float>::infinity()) == 0xfc00);
}

TEST_CASE("ToF32 widens F16 and BF16 and refuses integers", "[safetensors]") {
  const uint16_t half[] = {0x3c00, 0xc000};  // 1, -2
  const uint16_t brain[] = {moe::F32ToBF16(1.5f), moe::F32ToBF16(-0.25f)};
  float out[2];
  moe::ToF32(DType::kF16, half, out, 2);
  REQUIRE(out[0] == 1.0f);
  REQUIRE(out[1] == -2.0f);
  moe::ToF32(DType::kBF16, brain, out, 2);
  REQUIRE(out[0] == 1.5f);
  REQUIRE(out[1] == -0.25f);
  REQUIRE_THROWS_WITH(moe::ToF32(DType::kI32, half, out, 1), Contains("I32 is not a float type"));
}

TEST_CASE("safetensors round trip keeps every dtype, shape, byte and metadata", "[safetensors]") {
  const fs::path dir = TempDir("st-roundtrip");
  const std::vector<moe::OwnedTensor> tensors = {
      Filled("f32", DType::kF32, {2, 3}),   Filled("f16", DType::kF16, {5}),
      Filled("bf16", DType::kBF16, {3, 1}), Filled("i32", DType::kI32, {4}),
      Filled("i64", DType::kI64, {2, 2}),   Filled("i16", DType::kI16, {3}),
      Filled("u8", DType::kU8, {7}),        Filled("scalar", DType::kF32, {}),
      Filled("empty", DType::kF32, {0, 4}),
  };
  const fs::path path = dir / "all.safetensors";
  moe::WriteSafetensors(path.string(), tensors, {{"format", "pt"}, {"note", "round trip"}});

  // Nothing else is left in the folder (the temporary file was renamed).
  REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);

  const moe::SafetensorsFile file(path.string());
  REQUIRE(file.metadata() ==
          std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}});
  REQUIRE(file.Names().size() == tensors.size());
  for (const moe::OwnedTensor& t : tensors) {
    INFO(t.name);
    const moe::TensorView v = file.Tensor(t.name);
    REQUIRE(v.dtype == t.dtype);
    REQUIRE(v.shape == t.shape);
    REQUIRE(v.nbytes() == t.bytes.size());
    REQUIRE(std::string(static_cast<const char*>(v.data), v.nbytes()) ==
            std::string(t.bytes.begin(), t.bytes.end()));
  }

  // Header padded to a multiple of 8; tensors back to back in the order given.
  const std::string bytes = ReadBytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  REQUIRE(header_len % 8 == 0);
  const auto* data = reinterpret_cast<const uint8_t*>(file.Tensor("f32").data);
  REQUIRE(static_cast<const void*>(data + 24) == file.Tensor("f16").data);
}

TEST_CASE("safetensors without metadata has no __metadata__ entry", "[safetensors]") {
  const fs::path path = TempDir("st-nometa") / "x.safetensors";
  const float values[] = {1, 2};
  moe::WriteSafetensors(path.string(), {moe::MakeF32Tensor("w", {2}, values)});
  REQUIRE(ReadBytes(path).find("__metadata__") == std::string::npos);
  const moe::SafetensorsFile file(path.string());
  REQUIRE(file.metadata().empty());
  REQUIRE(static_cast<const float*>(file.Tensor("w").data)[1] == 2.0f);
}

TEST_CASE("a failed safetensors write leaves no file behind", "[safetensors][bad-input]") {
  const fs::path dir = TempDir("st-fail");
  const float values[] = {1, 2};
  const std::vector<moe::OwnedTensor> twice = {moe::MakeF32Tensor("w", {2}, values),
                                               moe::MakeF32Tensor("w", {2}, values)};
  REQUIRE_THROWS_WITH(moe::WriteSafetensors((dir / "x.safetensors").string(), twice),
                      Contains("x.safetensors: tensor 'w' is given twice"));
  REQUIRE(fs::is_empty(dir));

  const fs::path missing = dir / "no-such-folder" / "x.safetensors";
  REQUIRE_THROWS_WITH(moe::WriteSafetensors(missing.string(), {twice[0]}),
                      Contains(missing.string()) && Contains("No such file or directory"));
  REQUIRE(fs::is_empty(dir));

  // An existing file survives a failed overwrite untouched.
  const fs::path path = dir / "keep.safetensors";
  moe::WriteSafetensors(path.string(), {twice[0]});
  const std::string before = ReadBytes(path);
  REQUIRE_THROWS(moe::WriteSafetensors(path.string(), twice));
  REQUIRE(ReadBytes(path) == before);
  REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
}

TEST_CASE("safetensors rejects bad files with the file and the problem named",
          "[safetensors][bad-input]") {
  const fs::path dir = TempDir("st-bad");
  const std::string tensor_a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  SECTION("missing file") {
    const std::string path = (dir / "absent.safetensors").string();
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path),
                        Contains(path) && Contains("No such file or directory"));
  }
  SECTION("shorter than the length field") {
    const fs::path path = dir / "short.safetensors";
    WriteBytes(path, "abc");
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": file is 3 bytes, too short"));
    WriteBytes(path, "");
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()), Contains("file is 0 bytes"));
  }
  SECTION("header length past the end") {
    std::string bytes(1000, ' ');
    const uint64_t len = 123456;
    std::memcpy(bytes.data(), &len, 8);
    const fs::path path = dir / "long.safetensors";
    WriteBytes(path, bytes);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": header length 123456 runs past the end of "
                                                 "the file (1000 bytes)"));
  }
  SECTION("header not JSON") {
    const fs::path path = WriteRaw(dir, "{\"a\": nope}", 0);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": header is not valid JSON"));
  }
  SECTION("header not an object") {
    const fs::path path = WriteRaw(dir, "[1, 2]", 0);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": header is not a JSON object"));
  }
  SECTION("entry not an object") {
    const fs::path path = WriteRaw(dir, R"({"a": 3})", 0);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": tensor 'a' is 3"));
  }
}

TEST_CASE("safetensors rejects bad tensor entries with the file and the tensor named",
          "[safetensors][bad-input]") {
  const fs::path dir = TempDir("st-bad-entries");
  const std::string tensor_a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  SECTION("unknown dtype") {
    const fs::path path =
        WriteRaw(dir, R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": tensor 'a' has unknown dtype \"F8_E4M3\""));
  }
  SECTION("shape not a list of non-negative integers") {
    for (const char* shape : {"3", "[-1]", "[1.5]", "[\"2\"]"}) {
      INFO(shape);
      const fs::path path = WriteRaw(
          dir,
          std::string(R"({"a":{"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,4]}})", 4);
      REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                          Contains(path.string() + ": tensor 'a' has shape") &&
                              Contains("expected a list of non-negative integers"));
    }
  }
  SECTION("data_offsets not [begin, end]") {
    for (const char* offsets : {"[8,4]", "[0]", "[0,4,8]", "[-1,4]", "\"0-4\""}) {
      INFO(offsets);
      const fs::path path = WriteRaw(
          dir, std::string(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":)") + offsets + "}}",
          8);
      REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                          Contains(path.string() + ": tensor 'a' has data_offsets") &&
                              Contains("expected [begin, end] with begin <= end"));
    }
  }
  SECTION("offsets past the data section") {
    const fs::path path = WriteRaw(dir, "{" + tensor_a + "}", 6);
    REQUIRE_THROWS_WITH(
        moe::SafetensorsFile(path.string()),
        Contains(path.string() + ": tensor 'a' is truncated") && Contains("(6 bytes)"));
  }
  SECTION("byte size differs from shape x dtype") {
    const fs::path path =
        WriteRaw(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
    REQUIRE_THROWS_WITH(
        moe::SafetensorsFile(path.string()),
        Contains(path.string() + ": tensor 'a' has 8 bytes") && Contains("F32 [3] needs 12"));
  }
  SECTION("overlapping tensors") {
    const fs::path path =
        WriteRaw(dir,
                 R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)" + tensor_a +
                     R"(,"c":{"dtype":"F32","shape":[0],"data_offsets":[12,12]}})",
                 12);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": tensors 'a' and 'b' overlap"));
  }
  SECTION("metadata that is not strings") {
    const fs::path path = WriteRaw(dir, R"({"__metadata__":{"format":1}})", 0);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": __metadata__ entry 'format' is 1"));
  }
  SECTION("asking for a tensor that is not there") {
    const fs::path path = WriteRaw(dir, "{" + tensor_a + "}", 8);
    const moe::SafetensorsFile file(path.string());
    REQUIRE(file.Contains("a"));
    REQUIRE_THROWS_WITH(file.Tensor("nope"), Contains(path.string() + ": no tensor 'nope'"));
  }
}

TEST_CASE("golden tiny_mlp_gate model.safetensors reads and rewrites byte for byte",
          "[safetensors][golden]") {
  const fs::path golden = GoldenDir() / "tiny_mlp_gate" / "model.safetensors";
  const moe::SafetensorsFile file(golden.string());
  REQUIRE(file.metadata().at("format") == "pt");
  // 2 layers x (9 attention/norm/gate tensors + weight_noise + 8 experts x 3) + 3 others.
  REQUIRE(file.Names().size() == 71);

  const moe::TensorView embed = file.Tensor("model.embed_tokens.weight");
  REQUIRE(embed.dtype == DType::kF32);
  REQUIRE(embed.shape == moe::Shape{257, 64});
  REQUIRE(file.Tensor("model.layers.1.mlp.calculator.experts.weight_down.7").shape ==
          moe::Shape{64, 32});

  // inv_freq[j] = 1 / 10000^(2j / head_dim), head_dim 16.
  const moe::TensorView inv_freq = file.Tensor("model.layers.0.self_attn.rotary_emb.inv_freq");
  REQUIRE(inv_freq.shape == moe::Shape{8});
  std::vector<float> values(8);
  moe::ToF32(inv_freq.dtype, inv_freq.data, values.data(), values.size());
  for (int j = 0; j < 8; ++j) {
    REQUIRE(values[j] == Approx(1.0 / std::pow(10000.0, 2.0 * j / 16)).epsilon(1e-6));
  }

  std::vector<moe::NamedView> all;
  for (const std::string& name : file.Names()) all.push_back({name, file.Tensor(name)});
  const fs::path copy = TempDir("st-golden") / "model.safetensors";
  moe::WriteSafetensors(copy.string(), all, file.metadata());
  REQUIRE(ReadBytes(copy) == ReadBytes(golden));
}

TEST_CASE("safetensors refuses a name given twice in its header", "[safetensors][bad-input]") {
  // JSON parsers keep the last of repeated keys; the first tensor would vanish without a word.
  const fs::path dir = TempDir("st-duplicates");
  SECTION("a tensor named twice, with the same or other offsets") {
    for (const char* second : {R"("data_offsets":[0,8])", R"("data_offsets":[8,16])"}) {
      INFO(second);
      const fs::path path =
          WriteRaw(dir,
                   std::string(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)") +
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)" +
                       R"("a":{"dtype":"F32","shape":[2],)" + second + "}}",
                   16);
      REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                          Contains(path.string() + ": tensor 'a' appears twice in the header"));
    }
  }
  SECTION("a field named twice inside one entry") {
    const fs::path path =
        WriteRaw(dir, R"({"a":{"dtype":"F32","shape":[2],"shape":[1],"data_offsets":[0,8]}})", 8);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": header has key 'shape' twice in one object"));
  }
  SECTION("__metadata__ keys twice") {
    const fs::path path = WriteRaw(dir, R"({"__metadata__":{"k":"1","k":"2"}})", 0);
    REQUIRE_THROWS_WITH(moe::SafetensorsFile(path.string()),
                        Contains(path.string() + ": header has key 'k' twice in one object"));
  }
  SECTION("the same key in different objects is fine") {
    const fs::path path = WriteRaw(dir,
                                   R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   8);
    REQUIRE(moe::SafetensorsFile(path.string()).Names() == std::vector<std::string>{"a", "b"});
  }
}
