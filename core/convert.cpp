#include "core/convert.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/json_value.h"
#include "core/safetensors_file.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

// `t` as `dtype` (a float type), into `storage`.
TensorView Cast(const TensorView& t, DType dtype, std::vector<uint8_t>& storage) {
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> f32(n);
  ToF32(t.dtype, t.data, f32.data(), n);
  storage.resize(n * DTypeSize(dtype));
  if (dtype == DType::kF32) {
    std::memcpy(storage.data(), f32.data(), storage.size());
  } else {
    auto* out = reinterpret_cast<uint16_t*>(storage.data());
    for (size_t i = 0; i < n; ++i)
      out[i] = dtype == DType::kBF16 ? F32ToBF16(f32[i]) : F32ToF16(f32[i]);
  }
  return {dtype, t.shape, storage.data()};
}

bool IsFloat(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16;
}

const char* TorchDtypeName(DType d) {
  return d == DType::kF32 ? "float32" : d == DType::kF16 ? "float16" : "bfloat16";
}

// config.json with torch_dtype set.
void WriteConfigWithDtype(const fs::path& from, const fs::path& to, DType dtype) {
  nlohmann::json config = ReadJsonFile(from);
  config["torch_dtype"] = TorchDtypeName(dtype);
  WriteFileAtomically(to, config.dump(2) + "\n");
}

}  // namespace

void ConvertCheckpointToSafetensors(const fs::path& in_dir, const fs::path& out_dir,
                                    std::optional<DType> dtype) {
  if (dtype && !IsFloat(*dtype))
    Fail("--dtype", std::string("is ") + DTypeName(*dtype) + ", expected F32, F16 or BF16");
  const Checkpoint checkpoint(in_dir);

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) Fail(out_dir.string(), "cannot create folder: " + ec.message());

  const std::vector<std::string> names = checkpoint.Names();
  std::vector<NamedView> tensors;
  std::vector<std::vector<uint8_t>> cast(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    TensorView view = *checkpoint.Find(names[i]);
    if (dtype && IsFloat(view.dtype) && view.dtype != *dtype) view = Cast(view, *dtype, cast[i]);
    tensors.push_back({names[i], view});
  }
  WriteSafetensors((out_dir / "model.safetensors").string(), tensors, {{"format", "pt"}});

  const fs::path config = in_dir / "config.json";
  if (fs::exists(config) && dtype)
    WriteConfigWithDtype(config, out_dir / "config.json", *dtype);
  else if (fs::exists(config))
    CopyFileAtomically(config, out_dir / "config.json");
  CopyModelCompanionFiles(in_dir, out_dir);
}

void CopyModelCompanionFiles(const fs::path& in_dir, const fs::path& out_dir) {
  static constexpr const char* kCompanionFiles[] = {"generation_config.json", "tokenizer.model",
                                                    "tokenizer.json", "tokenizer_config.json",
                                                    "special_tokens_map.json"};
  for (const char* file : kCompanionFiles)
    if (fs::exists(in_dir / file)) CopyFileAtomically(in_dir / file, out_dir / file);
}

}  // namespace moe
