#include "analysis/policy/policy_source.h"

#include <nlohmann/json.hpp>

#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "core/config.h"
#include "core/error.h"

namespace moe {

RoutingPolicy MakePolicy(const PolicySource& source, const ModelConfig& config) {
  if (!source.file.empty() && source.has_flags())
    Fail("--policy",
         "give a policy file or the --disable/--mode/--top-k/--top-r/--random-r flags, not both");
  if (source.file.empty())
    return PolicyFromFlags(source.disable, source.mode, source.top_k, source.top_r, source.random_r,
                           source.random_r_seed, config);
  return PolicyFromJsonFile(source.file, config);
}

}  // namespace moe
