// The trace reader (analysis/trace/trace_reader) on arbitrary bytes: any file must open or fail
// with moe::Error, and everything an opened trace exposes must read or fail the same way.
// Mutated bytes mostly exercise HDF5's own file parser, which the project does not build and
// which is slow and leaks on some damaged files (docs/testing.md); hence a soak-only target, and
// fuzz_trace_reader (edits through the HDF5 API) in the test suite.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/read_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moe::fuzz::InputFile input(".h5");
  const auto& path = input.Write(data, size);
  try {
    moe::fuzz::ReadWholeTrace(path);
  } catch (const moe::Error&) {
  }
  return 0;
}
