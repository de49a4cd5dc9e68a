#pragma once
// An integer array from a file another program wrote: a NumPy .npy file (format versions 1-3,
// C order, little-endian or byte-sized signed/unsigned integers of 1, 2, 4 or 8 bytes) or one
// tensor of a .safetensors file (I16, I32, I64, U8). Route replay reads expert ids and token ids
// this way (docs/route-replay.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe {

struct IntArray {
  Shape shape;
  std::vector<int64_t> values;  // row-major
};

// `tensor` names the tensor of a .safetensors file (unused for .npy). Throws Error naming the
// file (and tensor) when it is missing, not an integer array, or malformed.
IntArray ReadIntArray(const std::filesystem::path& path, const std::string& tensor);

// True when `path` ends in .safetensors.
bool IsSafetensorsPath(const std::filesystem::path& path);

}  // namespace moe
