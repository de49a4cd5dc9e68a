#include "analysis/policy/policy_flags.h"

#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "analysis/policy/policy_json.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {

int ParseLayer(const std::string& key, int num_layers, const std::string& flag) {
  if (key == "*") return -1;
  size_t used = 0;
  int layer = -1;
  try {
    layer = std::stoi(key, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != key.size()) Fail(flag, "layer '" + Clipped(key) + "' is not a number or '*'");
  if (layer < 0 || layer >= num_layers)
    Fail(flag, "layer " + Clipped(key) + " is out of range (the model has layers 0.." +
                   std::to_string(num_layers - 1) + ")");
  return layer;
}

namespace {

// "12:1,3:2" -> [(12, 1), (3, 2)], layer -1 for "*"; each value an integer in [lo, hi].
std::vector<std::pair<int, int>> ParsePairs(const std::string& text, int num_layers,
                                            const std::string& flag, int lo, int hi) {
  std::vector<std::pair<int, int>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t colon = item.find(':');
    const std::string entry = "entry '" + Clipped(item) + "'";
    if (colon == std::string::npos) Fail(flag, entry + " must look like LAYER:VALUE (e.g. 3:5)");
    // The value is read as a JSON number so that flags and policy files share one range check
    // (JsonInt): 1.5, 1e3 and values beyond the range are errors, never truncated.
    const nlohmann::json value =
        nlohmann::json::parse(item.substr(colon + 1), nullptr, /*allow_exceptions=*/false);
    if (!value.is_number()) Fail(flag, entry + " has a value that is not a number");
    const int v = static_cast<int>(JsonInt(value, flag, entry + ": the value", lo, hi));
    out.emplace_back(ParseLayer(item.substr(0, colon), num_layers, flag), v);
  }
  return out;
}

}  // namespace

std::vector<ExpertRef> ParseExpertList(const std::string& text, int num_layers,
                                       const std::string& flag) {
  std::vector<ExpertRef> out;
  const int max_int = std::numeric_limits<int>::max();
  for (const auto& [layer, expert] : ParsePairs(text, num_layers, flag, 0, max_int))
    for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
      out.push_back({l, expert});
  return out;
}

RoutingPolicy PolicyFromFlags(const std::string& disable, const std::string& mode,
                              const std::string& top_k, const std::string& top_r,
                              const ModelConfig& c) {
  return PolicyFromFlags(disable, mode, top_k, top_r, "", "", c);
}

RoutingPolicy PolicyFromFlags(const std::string& disable, const std::string& mode,
                              const std::string& top_k, const std::string& top_r,
                              const std::string& random_r, const std::string& random_r_seed,
                              const ModelConfig& c) {
  const int L = c.num_hidden_layers;
  RoutingPolicy p = RoutingPolicy::Disabling(
      ParseExpertList(disable, L, "--disable"),
      mode.empty() ? DisableMode::kReroute : ParseDisableMode(mode, "--mode"), L);
  // k = 0 would mean "the config's num_selects" inside RoutingPolicy: refused, not ignored.
  for (const auto& [layer, k] : ParsePairs(top_k, L, "--top-k", 1, c.num_experts))
    p.SetTopK(layer, k, L);
  for (const auto& [layer, r] : ParsePairs(top_r, L, "--top-r", 0, std::numeric_limits<int>::max()))
    p.SetTopR(layer, r, L);
  uint64_t seed = 0;
  if (!random_r_seed.empty()) {
    if (random_r.empty())
      Fail("--random-r-seed", "is given without --random-r, whose draws it seeds");
    const nlohmann::json value =
        nlohmann::json::parse(random_r_seed, nullptr, /*allow_exceptions=*/false);
    if (!value.is_number()) {
      std::string message = "'";  // appended, not a chain of operator+ (GCC 12 -Wrestrict)
      message += Clipped(random_r_seed);
      message += "' is not a number";
      Fail("--random-r-seed", message);
    }
    seed = static_cast<uint64_t>(
        JsonInt(value, "--random-r-seed", "the seed", 0, std::numeric_limits<int64_t>::max()));
  }
  for (const auto& [layer, r] :
       ParsePairs(random_r, L, "--random-r", 0, std::numeric_limits<int>::max()))
    p.SetRandomR(layer, r, seed, L);
  return p;
}

}  // namespace moe
