#pragma once
// `moescope convert`: any checkpoint folder (safetensors or PyTorch .bin, single or sharded)
// to one model.safetensors, so later runs memory-map it instead of parsing pickles.
#include <filesystem>

namespace moe {

// Writes `out_dir`/model.safetensors (tensors in name order, dtypes kept, metadata
// {"format": "pt"}) and copies the config and tokenizer files that exist in `in_dir`.
// Creates `out_dir`. Every file appears complete or not at all.
void ConvertCheckpointToSafetensors(const std::filesystem::path& in_dir,
                                    const std::filesystem::path& out_dir);

}  // namespace moe
