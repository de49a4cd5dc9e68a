// Routing policies from JSON (analysis/policy/policy_json) for the tiny test model: any JSON
// must give a policy or moe::Error, and a policy that validates must survive the trip through
// PolicyToJson unchanged (traces store it that way).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "analysis/policy/policy_json.h"
#include "core/config.h"
#include "core/error.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const moe::ModelConfig config =
      moe::ModelConfig::FromFile(moe::fuzz::FixturePath("tiny_moe/config.json"));
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const moe::RoutingPolicy policy = moe::PolicyFromJson(j, config, "policy.json");
    policy.Validate(config);
    const nlohmann::json once = moe::PolicyToJson(policy);
    const nlohmann::json twice = moe::PolicyToJson(moe::PolicyFromJson(once, config, "again"));
    if (once != twice) {
      std::fprintf(stderr, "policy JSON round trip differs:\n%s\n%s\n", once.dump().c_str(),
                   twice.dump().c_str());
      std::abort();
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
