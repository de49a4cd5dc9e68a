#pragma once
// Where a command's routing policy comes from: a JSON file (--policy) or the intervention flags
// (--disable, --mode, --top-k, --top-r, --random-r, --random-r-seed), never both.
#include <string>

#include "core/routing_policy.h"

namespace moe {

struct PolicySource {
  std::string file;     // --policy FILE.json
  std::string disable;  // --disable "3:5,3:7"
  std::string mode;     // --mode reroute | drop | drop-renorm
  std::string top_k;    // --top-k "12:1" or "*:1"
  std::string top_r;    // --top-r "*:1"
  // Default-initialized, so that brace-initialized sources naming only the fields above stay
  // warning-free.
  std::string random_r = {};       // --random-r "*:1"
  std::string random_r_seed = {};  // --random-r-seed 7

  bool has_flags() const {
    return !disable.empty() || !mode.empty() || !top_k.empty() || !top_r.empty() ||
           !random_r.empty() || !random_r_seed.empty();
  }
};

// The policy; empty when nothing was given. A policy file is validated here, so that its errors
// name the file; flags are validated by the run (RoutingPolicy::Validate). Errors name the file
// or the flag.
RoutingPolicy MakePolicy(const PolicySource& source, const ModelConfig& config);

}  // namespace moe
