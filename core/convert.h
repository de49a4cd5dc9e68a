#pragma once
// `moescope convert`: any checkpoint folder (safetensors or PyTorch .bin, single or sharded)
// to one model.safetensors, so later runs memory-map it instead of parsing pickles.
#include <filesystem>
#include <optional>

#include "core/tensor.h"

namespace moe {

// Writes `out_dir`/model.safetensors (tensors in name order, dtypes kept, metadata
// {"format": "pt"}) and copies the config and tokenizer files that exist in `in_dir`.
// Creates `out_dir`. Every file appears complete or not at all. With `dtype` (F32, F16 or BF16)
// every floating-point tensor is stored in that type (rounded to nearest even) and config.json's
// torch_dtype says so.
// Copies the files beside the weights that a model folder needs to be opened on its own
// (generation config, SentencePiece or tokenizer.json tokenizer and their settings; not
// config.json, which callers write themselves) from `in_dir` to `out_dir`, those that exist.
void CopyModelCompanionFiles(const std::filesystem::path& in_dir,
                             const std::filesystem::path& out_dir);

void ConvertCheckpointToSafetensors(const std::filesystem::path& in_dir,
                                    const std::filesystem::path& out_dir,
                                    std::optional<DType> dtype = std::nullopt);

}  // namespace moe
