// The safetensors header parser (core/safetensors_file): any file must open cleanly or fail with
// moe::Error, and every tensor it accepts must lie inside the file.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/safetensors_file.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moe::fuzz::InputFile input(".safetensors");
  try {
    moe::SafetensorsFile file(input.Write(data, size).string());
    for (const std::string& name : file.Names()) {
      const moe::TensorView view = file.Tensor(name);
      moe::fuzz::TouchBytes(view.data, view.nbytes());
    }
    for (const auto& [key, value] : file.metadata())
      moe::fuzz::TouchBytes(value.data(), value.size());
  } catch (const moe::Error&) {
  }
  return 0;
}
