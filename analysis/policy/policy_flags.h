#pragma once
// Routing policies from command-line flags: --disable "3:5,3:7" (or "*:5"), --mode reroute |
// drop | drop-renorm, --top-k "12:1" (or "*:1"), --top-r "*:1", --random-r "*:1" with
// --random-r-seed S (default 0). Like the JSON parser, it builds with core's typed builders and
// leaves validation to the run.
#include <string>
#include <vector>

#include "core/config.h"
#include "core/routing_policy.h"

namespace moe {

// A layer named in a policy: "3" -> 3, "*" -> -1 (every layer). Errors name `where`.
int ParseLayer(const std::string& key, int num_layers, const std::string& where);

// "3:5,3:7" -> {{3, 5}, {3, 7}}; "*:5" names expert 5 of every layer. Errors name `flag`.
std::vector<ExpertRef> ParseExpertList(const std::string& text, int num_layers,
                                       const std::string& flag);

RoutingPolicy PolicyFromFlags(const std::string& disable, const std::string& mode,
                              const std::string& top_k, const std::string& top_r,
                              const ModelConfig& config);
// The same with --random-r LAYER:R,... and --random-r-seed S (an integer in [0, 2^63 - 1]; empty
// = 0; a seed without --random-r is an error, since it would change nothing).
RoutingPolicy PolicyFromFlags(const std::string& disable, const std::string& mode,
                              const std::string& top_k, const std::string& top_r,
                              const std::string& random_r, const std::string& random_r_seed,
                              const ModelConfig& config);

}  // namespace moe
