// config.json (core/config): any JSON must give a config or moe::Error, and a config accepted
// must not overflow what is computed from it.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;  // not JSON: FromFile reports that before FromJson runs
  try {
    const moe::ModelConfig config = moe::ModelConfig::FromJson(j, "config.json");
    for (const int64_t value :
         {int64_t{config.head_dim()}, config.context_length(), config.max_sequence_length(),
          config.TotalParameters(), config.ActivatedParameters()})
      moe::fuzz::Keep(value);
  } catch (const moe::Error&) {
  }
  return 0;
}
