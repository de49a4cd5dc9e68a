#include "analysis/policy/policy_source.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "core/config.h"
#include "core/error.h"

namespace moe {

RoutingPolicy MakePolicy(const PolicySource& source, const LlamaMoeConfig& config) {
  if (!source.file.empty() && source.has_flags())
    Fail("--policy", "give a policy file or the --disable/--mode/--top-k/--top-r flags, not both");
  if (source.file.empty())
    return PolicyFromFlags(source.disable, source.mode, source.top_k, source.top_r, config);
  std::ifstream in(source.file);
  if (!in) Fail(source.file, "cannot open the routing policy");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    Fail(source.file, std::string("is not valid JSON (") + e.what() + ")");
  }
  return PolicyFromJson(j, config, source.file);
}

}  // namespace moe
