// Checkpoint (model folders in every layout) and ConvertCheckpointToSafetensors.
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/heads.h"
#include "core/mapped_file.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"
#include "tests/unit/test_paths.h"

namespace fs = std::filesystem;
using Catch::Contains;
using moe::DType;

namespace {

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::vector<float> Values(const moe::TensorView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  moe::ToF32(v.dtype, v.data, out.data(), out.size());
  return out;
}

std::vector<std::string> FolderListing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

moe::OwnedTensor F32(const std::string& name, moe::Shape shape) {
  std::vector<float> values(static_cast<size_t>(moe::NumElements(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  return moe::MakeF32Tensor(name, std::move(shape), values.data());
}

// The sharded torch fixture against its sidecar of expected values.
void CheckShardedValues(const moe::Checkpoint& checkpoint) {
  std::ifstream in(FixtureDir() / "torch_bin" / "sharded.json");
  const nlohmann::json expected = nlohmann::json::parse(in);
  REQUIRE(checkpoint.Names().size() == expected.size());
  for (const auto& [name, want] : expected.items()) {
    INFO(name);
    const moe::TensorView v = checkpoint.Require(name, want["shape"].get<moe::Shape>());
    REQUIRE(moe::DTypeName(v.dtype) == want["dtype"].get<std::string>());
    REQUIRE(Values(v) == want["values"].get<std::vector<float>>());
  }
}

// The path /proc/self/maps names for the mapping holding `p` ("" for anonymous memory).
std::string MappingOf(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    const uintptr_t begin = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    const uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (at < begin || at >= end) continue;
    const size_t slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  FAIL("no mapping holds " << p);
  return "";
}

}  // namespace

TEST_CASE("checkpoint from one model.safetensors: Require checks dtype and shape", "[checkpoint]") {
  const fs::path dir = TempDir("ckpt-single");
  const int32_t ids[] = {1, 2};
  moe::WriteSafetensors((dir / "model.safetensors").string(),
                        {F32("model.norm.weight", {64}), F32("model.embed_tokens.weight", {4, 64}),
                         moe::MakeI32Tensor("ids", {2}, ids)});
  moe::Checkpoint checkpoint(dir);
  const std::string file = (dir / "model.safetensors").string();

  REQUIRE(checkpoint.Names() ==
          std::vector<std::string>{"ids", "model.embed_tokens.weight", "model.norm.weight"});
  REQUIRE(checkpoint.Files() == std::vector<std::string>{"model.safetensors"});
  REQUIRE(checkpoint.FileOf("model.norm.weight") == file);
  REQUIRE(checkpoint.FileOf("nope").empty());
  REQUIRE_FALSE(checkpoint.Find("nope").has_value());
  REQUIRE(checkpoint.Contains("ids"));
  REQUIRE(checkpoint.Require("model.embed_tokens.weight", {4, 64}).shape == moe::Shape{4, 64});

  REQUIRE_THROWS_WITH(
      checkpoint.Require("model.norm.weight", {63}),
      Contains(file + ": tensor 'model.norm.weight' has shape [64], expected [63]"));
  REQUIRE_THROWS_WITH(checkpoint.Require("lm_head.weight", {4, 64}),
                      Contains(file + ": missing tensor 'lm_head.weight'"));
  REQUIRE_THROWS_WITH(checkpoint.Require("ids", {2}),
                      Contains(file + ": tensor 'ids' has dtype I32, expected F32, F16 or BF16"));

  // Moving keeps the mapped tensors valid.
  moe::Checkpoint moved = std::move(checkpoint);
  REQUIRE(Values(moved.Require("model.norm.weight", {64}))[3] == 1.5f);
}

TEST_CASE("checkpoint from the golden tiny_mlp_gate folder", "[checkpoint][golden]") {
  const moe::Checkpoint checkpoint(GoldenDir() / "tiny_mlp_gate");
  REQUIRE(checkpoint.Names().size() == 71);
  REQUIRE(checkpoint.Require("lm_head.weight", {257, 64}).dtype == DType::kF32);
  REQUIRE(checkpoint.Require("model.layers.1.mlp.gate.gate_network.2.weight", {8, 8}).data !=
          nullptr);
}

TEST_CASE("checkpoint from sharded safetensors", "[checkpoint]") {
  const fs::path dir = TempDir("ckpt-sharded");
  moe::WriteSafetensors((dir / "model-00001-of-00002.safetensors").string(), {F32("a", {2})});
  moe::WriteSafetensors((dir / "model-00002-of-00002.safetensors").string(),
                        {F32("b", {3}), F32("unlisted", {1})});
  const std::string index = (dir / "model.safetensors.index.json").string();

  SECTION("every name in its shard") {
    WriteText(index, R"({"metadata": {"total_size": 20}, "weight_map": {
        "b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors"}})");
    const moe::Checkpoint checkpoint(dir);
    REQUIRE(checkpoint.Names() == std::vector<std::string>{"a", "b"});
    REQUIRE(checkpoint.FileOf("b") == (dir / "model-00002-of-00002.safetensors").string());
    REQUIRE(checkpoint.Files() == std::vector<std::string>{"model.safetensors.index.json",
                                                           "model-00001-of-00002.safetensors",
                                                           "model-00002-of-00002.safetensors"});
    REQUIRE(Values(checkpoint.Require("b", {3})) == std::vector<float>{0, 0.5f, 1});
    REQUIRE_THROWS_WITH(checkpoint.Require("c", {1}), Contains(index + ": missing tensor 'c'"));
  }
  SECTION("a name its shard does not hold") {
    WriteText(index, R"({"weight_map": {"b": "model-00001-of-00002.safetensors"}})");
    REQUIRE_THROWS_WITH(moe::Checkpoint(dir),
                        Contains(index + ": weight_map puts tensor 'b' in " +
                                 (dir / "model-00001-of-00002.safetensors").string() +
                                 ", which has no such tensor"));
  }
  SECTION("a shard that does not exist") {
    WriteText(index, R"({"weight_map": {"a": "model-00003-of-00002.safetensors"}})");
    REQUIRE_THROWS_WITH(moe::Checkpoint(dir),
                        Contains((dir / "model-00003-of-00002.safetensors").string() +
                                 ": cannot open: No such file or directory"));
  }
  SECTION("a shard outside the folder") {
    WriteText(index, R"({"weight_map": {"a": "../model.safetensors"}})");
    REQUIRE_THROWS_WITH(moe::Checkpoint(dir),
                        Contains(index + ": weight_map entry 'a' is \"../model.safetensors\""));
  }
  SECTION("no weight_map") {
    WriteText(index, R"({"metadata": {}})");
    REQUIRE_THROWS_WITH(moe::Checkpoint(dir), Contains(index + ": has no \"weight_map\" object"));
  }
  SECTION("index not JSON") {
    WriteText(index, "{");
    REQUIRE_THROWS_WITH(moe::Checkpoint(dir), Contains(index + ": is not valid JSON"));
  }
}

TEST_CASE("checkpoint from PyTorch .bin files", "[checkpoint][torch]") {
  const fs::path fixtures = FixtureDir() / "torch_bin";

  SECTION("single pytorch_model.bin") {
    const fs::path dir = TempDir("ckpt-bin");
    fs::copy_file(fixtures / "state_dict.bin", dir / "pytorch_model.bin");
    const moe::Checkpoint checkpoint(dir);
    REQUIRE(checkpoint.Files() == std::vector<std::string>{"pytorch_model.bin"});
    REQUIRE(checkpoint.Require("f16", {2, 2}).dtype == DType::kF16);
    REQUIRE_THROWS_WITH(checkpoint.Require("f32", {3, 2}),
                        Contains((dir / "pytorch_model.bin").string() +
                                 ": tensor 'f32' has shape [2, 3], expected [3, 2]"));

    // With model.safetensors beside it, safetensors wins.
    moe::WriteSafetensors((dir / "model.safetensors").string(), {F32("x", {1})});
    REQUIRE(moe::Checkpoint(dir).Names() == std::vector<std::string>{"x"});
  }
  SECTION("sharded pytorch_model.bin.index.json") {
    const moe::Checkpoint checkpoint(fixtures / "sharded");
    CheckShardedValues(checkpoint);
    REQUIRE(checkpoint.FileOf("lm_head.weight") ==
            (fixtures / "sharded" / "pytorch_model-00002-of-00002.bin").string());
    REQUIRE(checkpoint.Files().size() == 3);
  }
}

TEST_CASE("weights copied into huge pages keep their address and every byte", "[checkpoint]") {
  SECTION("safetensors, a tensor spanning several 2 MiB pages") {
    const fs::path dir = TempDir("ckpt-huge");
    const std::string file = (dir / "model.safetensors").string();
    moe::WriteSafetensors(file, {F32("big", {3, 1 << 20}), F32("small", {5})});
    moe::Checkpoint checkpoint(dir);
    const moe::TensorView before = checkpoint.Require("big", {3, 1 << 20});
    const std::vector<float> values = Values(before);
    REQUIRE(MappingOf(before.data) == file);

    checkpoint.CopyIntoHugePages();
    const moe::TensorView after = checkpoint.Require("big", {3, 1 << 20});
    CHECK(after.data == before.data);
    CHECK(MappingOf(after.data).empty());  // private memory now, no longer the file's pages
    CHECK(Values(after) == values);
    CHECK(Values(checkpoint.Require("small", {5})) == std::vector<float>{0, 0.5f, 1, 1.5f, 2});
  }
  SECTION("sharded PyTorch .bin files") {
    moe::Checkpoint checkpoint(FixtureDir() / "torch_bin" / "sharded");
    checkpoint.CopyIntoHugePages();
    CheckShardedValues(checkpoint);
  }
  SECTION("a model computes the same logits from either") {
    const fs::path dir = GoldenDir() / "tiny_mlp_gate";
    const moe::LoadedModel mapped = moe::LoadModel(dir);
    const moe::LoadedModel copied = moe::LoadModel(dir, {.weight_pages = moe::WeightPages::kHuge});
    const moe::Batch batch = moe::Batch::Single({1, 5, 9, 200, 7, 3});
    const std::vector<float> a = mapped.model->Forward(batch);
    const std::vector<float> b = copied.model->Forward(batch);
    CHECK(moe::LmLogits(*copied.model, b.data(), batch.tokens()) ==
          moe::LmLogits(*mapped.model, a.data(), batch.tokens()));
  }
}

TEST_CASE("a background copy into huge pages keeps every byte readable while it runs",
          "[checkpoint]") {
  SECTION("a file of several stretches, read again and again during the copy") {
    const fs::path dir = TempDir("ckpt-huge-background");
    const std::string file = (dir / "model.safetensors").string();
    moe::WriteSafetensors(file, {F32("big", {17, 1 << 20}), F32("small", {5})});  // 68 MiB
    moe::Checkpoint checkpoint(dir);
    const moe::TensorView big = checkpoint.Require("big", {17, 1 << 20});
    const std::vector<float> values = Values(big);
    checkpoint.StartCopyIntoHugePages();
    int reads = 0;
    while (checkpoint.copied_bytes() < checkpoint.total_bytes() && reads < 50) {
      REQUIRE(Values(big) == values);  // a hole in the mapping would crash here
      ++reads;
    }
    CHECK(checkpoint.WaitForCopy().empty());
    CHECK(checkpoint.copied_bytes() == checkpoint.total_bytes());
    CHECK(checkpoint.Require("big", {17, 1 << 20}).data == big.data);
    CHECK(MappingOf(big.data).empty());  // the first and the last stretch both moved
    CHECK(MappingOf(static_cast<const float*>(big.data) + big.numel() - 1).empty());
    CHECK(Values(big) == values);
  }
  SECTION("a model computes the same logits while its weights are copied") {
    const fs::path dir = GoldenDir() / "tiny_mlp_gate";
    const moe::LoadedModel mapped = moe::LoadModel(dir);
    const moe::LoadedModel copied =
        moe::LoadModel(dir, {.weight_pages = moe::WeightPages::kHugeBackground});
    const moe::Batch batch = moe::Batch::Single({1, 5, 9, 200, 7, 3});
    const std::vector<float> a = mapped.model->Forward(batch);
    const std::vector<float> during = copied.model->Forward(batch);
    CHECK(copied.checkpoint->WaitForCopy().empty());
    CHECK(copied.checkpoint->copied_bytes() == copied.checkpoint->total_bytes());
    const std::vector<float> after = copied.model->Forward(batch);
    CHECK(during == a);
    CHECK(after == a);
  }
  SECTION("a copy told to stop leaves the file mapped") {
    const fs::path dir = TempDir("ckpt-huge-stopped");
    moe::WriteSafetensors((dir / "model.safetensors").string(), {F32("a", {4})});
    moe::MappedFile mapped((dir / "model.safetensors").string());
    const std::atomic<bool> stop{true};
    CHECK(mapped.CopyIntoHugePages(stop).empty());
    CHECK(mapped.copied_bytes() == 0);
    CHECK(MappingOf(mapped.data()) == (dir / "model.safetensors").string());
  }
}

TEST_CASE("a file that changed after opening is not copied, and stays readable",
          "[checkpoint][bad-input]") {
  const fs::path dir = TempDir("ckpt-huge-changed");
  const std::string file = (dir / "model.safetensors").string();
  moe::WriteSafetensors(file, {F32("a", {4})});
  moe::Checkpoint checkpoint(dir);
  std::ofstream(file, std::ios::app) << "appended";
  REQUIRE_THROWS_WITH(checkpoint.CopyIntoHugePages(),
                      Contains(file + ": changed size since it was opened"));
  CHECK(Values(checkpoint.Require("a", {4})) == std::vector<float>{0, 0.5f, 1, 1.5f});
  CHECK(MappingOf(checkpoint.Require("a", {4}).data) == file);
}

TEST_CASE("checkpoint folder without weights says what it looked for", "[checkpoint][bad-input]") {
  const fs::path dir = TempDir("ckpt-empty");
  REQUIRE_THROWS_WITH(moe::Checkpoint(dir),
                      Contains(dir.string() + ": no checkpoint found (looked for "
                                              "model.safetensors, model.safetensors.index.json, "
                                              "pytorch_model.bin, pytorch_model.bin.index.json)"));
  REQUIRE_THROWS_WITH(moe::Checkpoint(dir / "absent"),
                      Contains((dir / "absent").string() + ": no such folder"));
}

TEST_CASE("convert sharded .bin to one safetensors file", "[checkpoint][convert]") {
  const fs::path out = TempDir("convert-bin") / "nested" / "out";
  moe::ConvertCheckpointToSafetensors(FixtureDir() / "torch_bin" / "sharded", out);

  REQUIRE(FolderListing(out) == std::vector<std::string>{"config.json", "model.safetensors"});
  REQUIRE(ReadBytes(out / "config.json") ==
          ReadBytes(FixtureDir() / "torch_bin" / "sharded" / "config.json"));
  const moe::SafetensorsFile file((out / "model.safetensors").string());
  REQUIRE(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  // Name order in the file too: each tensor starts where the previous one ended.
  const auto names = file.Names();
  for (size_t i = 1; i < names.size(); ++i) {
    const moe::TensorView prev = file.Tensor(names[i - 1]);
    REQUIRE(static_cast<const uint8_t*>(prev.data) + prev.nbytes() == file.Tensor(names[i]).data);
  }
  CheckShardedValues(moe::Checkpoint(out));
}

TEST_CASE("convert of the golden safetensors folder reproduces it byte for byte",
          "[checkpoint][convert][golden]") {
  const fs::path in = GoldenDir() / "tiny_mlp_gate";
  const fs::path out = TempDir("convert-golden");
  moe::ConvertCheckpointToSafetensors(in, out);
  REQUIRE(FolderListing(out) == std::vector<std::string>{"config.json", "model.safetensors"});
  REQUIRE(ReadBytes(out / "model.safetensors") == ReadBytes(in / "model.safetensors"));
  REQUIRE(ReadBytes(out / "config.json") == ReadBytes(in / "config.json"));
}

TEST_CASE("convert keeps a folder's tokenizer, tokenizer.json included", "[checkpoint][convert]") {
  // A tokenizer.json model (OLMoE, Qwen) must stay openable after conversion.
  const fs::path in = TempDir("convert-tokenizer-in");
  for (const char* file : {"config.json", "model.safetensors"})
    fs::copy_file(GoldenDir() / "tiny_mlp_gate" / file, in / file);
  fs::copy_file(FixtureDir() / "tokenizers" / "qwen2_bpe.json", in / "tokenizer.json");
  const fs::path out = TempDir("convert-tokenizer-out");
  moe::ConvertCheckpointToSafetensors(in, out);
  REQUIRE(FolderListing(out) ==
          std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.json"});
  CHECK(ReadBytes(out / "tokenizer.json") == ReadBytes(in / "tokenizer.json"));
}

TEST_CASE("convert of a folder without weights creates nothing",
          "[checkpoint][convert][bad-input]") {
  const fs::path dir = TempDir("convert-none");
  REQUIRE_THROWS_WITH(moe::ConvertCheckpointToSafetensors(dir, dir / "out"),
                      Contains("no checkpoint found"));
  REQUIRE_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("convert --dtype BF16 rounds every float tensor and says so in the config",
          "[checkpoint][convert][golden]") {
  const fs::path in = GoldenDir() / "tiny_mlp_gate";
  const fs::path out = TempDir("convert-bf16");
  moe::ConvertCheckpointToSafetensors(in, out, moe::DType::kBF16);
  const moe::SafetensorsFile original((in / "model.safetensors").string());
  const moe::SafetensorsFile converted((out / "model.safetensors").string());
  REQUIRE(converted.Names() == original.Names());
  for (const std::string& name : original.Names()) {
    INFO(name);
    const moe::TensorView a = original.Tensor(name), b = converted.Tensor(name);
    REQUIRE(a.dtype == moe::DType::kF32);
    REQUIRE(b.dtype == moe::DType::kBF16);
    REQUIRE(a.shape == b.shape);
    const auto* f = static_cast<const float*>(a.data);
    const auto* h = static_cast<const uint16_t*>(b.data);
    for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(h[i] == moe::F32ToBF16(f[i]));
  }
  std::ifstream ci(in / "config.json"), co(out / "config.json");
  nlohmann::json want = nlohmann::json::parse(ci), got = nlohmann::json::parse(co);
  CHECK(got["torch_dtype"] == "bfloat16");
  want["torch_dtype"] = "bfloat16";
  CHECK(got == want);
  REQUIRE_THROWS_WITH(moe::ConvertCheckpointToSafetensors(in, out / "int", moe::DType::kI32),
                      Contains("--dtype") && Contains("I32"));
  REQUIRE_FALSE(fs::exists(out / "int"));
}
