#pragma once
// Routing policies as JSON (the --policy file format, the `routing_policy` attribute of traces,
// the Python module's Policy.to_dict) and the names of the disable modes:
//   {"mode": "reroute", "disable": [[layer, expert], ...], "top_k": {"layer"|"*": k},
//    "top_r": {"layer"|"*": r}, "random_r": {"layer"|"*": r}, "random_r_seed": {"layer"|"*": s},
//    "scale_factor": {"layer"|"*": f},
//    "force": [{"layer": l|"*", "token_id": id, "position": p, "experts": [...]}]}
// random_r and random_r_seed are written only when a layer has random_r > 0 (with its seed; a
// missing seed reads as 0; seeds in [0, 2^63 - 1]). Parsing builds the policy with core's typed
// builders. Numbers are range-checked as they are read (core/json_value.h: integers never
// truncated or wrapped, top_k in [1, num_experts], scale_factor a finite float32 >= 0, force
// token_id and position >= 0 and absent for "any"); the values' fit to the model is left to
// RoutingPolicy::Validate, which runs at the start of the run.
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/routing_policy.h"

namespace moe {

// The inverse of DisableModeName; an unknown name is an Error naming `where`.
DisableMode ParseDisableMode(const std::string& name, const std::string& where);

nlohmann::json PolicyToJson(const RoutingPolicy& policy);
// Errors name `where` (a file, "policy") and the key at fault.
RoutingPolicy PolicyFromJson(const nlohmann::json& j, const ModelConfig& config,
                             const std::string& where);
// A policy file (--policy): read, parsed and validated for `config`, so that every error, a value
// out of range for the model included, names the file.
RoutingPolicy PolicyFromJsonFile(const std::string& path, const ModelConfig& config);

}  // namespace moe
