// The trace reader (analysis/trace/trace_reader) on damaged traces: one of the seed traces the
// CLI wrote, edited through the HDF5 API as the input says (fuzz/trace_edits.h), must open or
// fail with moe::Error, and everything an opened trace exposes must read or fail the same way.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "core/error.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/read_trace.h"
#include "fuzz/trace_edits.h"

namespace {

// The traces fuzz/collect-seeds.sh writes (plain, with router logits, under a policy).
std::vector<std::vector<uint8_t>> LoadBaseTraces() {
  std::vector<std::vector<uint8_t>> traces;
  for (const char* name : {"plain.h5", "logits.h5", "policy.h5"}) {
    std::ifstream in(std::string(MOESCOPE_FUZZ_TRACE_DIR) + "/" + name, std::ios::binary);
    traces.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (traces.back().empty()) {
      std::fprintf(stderr, "no %s in %s: build the fuzz_seeds target first\n", name,
                   MOESCOPE_FUZZ_TRACE_DIR);
      std::abort();
    }
  }
  return traces;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::vector<uint8_t>> base = LoadBaseTraces();
  static moe::fuzz::InputFile file(".h5");
  FuzzedDataProvider input(data, size);
  const std::vector<uint8_t>& trace =
      base[input.ConsumeIntegralInRange<size_t>(0, base.size() - 1)];
  const auto& path = file.Write(trace.data(), trace.size());
  moe::fuzz::EditTrace(path, input);
  try {
    moe::fuzz::ReadWholeTrace(path);
  } catch (const moe::Error&) {
  }
  return 0;
}
