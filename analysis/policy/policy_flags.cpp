#include "analysis/policy/policy_flags.h"

#include <sstream>
#include <stdexcept>
#include <utility>

#include "analysis/policy/policy_json.h"
#include "core/error.h"

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
  if (used != key.size()) Fail(flag, "layer '" + key + "' is not a number or '*'");
  if (layer < 0 || layer >= num_layers)
    Fail(flag, "layer " + key + " is out of range (the model has layers 0.." +
                   std::to_string(num_layers - 1) + ")");
  return layer;
}

namespace {

// "12:1,3:2" -> [(12, 1), (3, 2)], layer -1 for "*".
std::vector<std::pair<int, int>> ParsePairs(const std::string& text, int num_layers,
                                            const std::string& flag) {
  std::vector<std::pair<int, int>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos)
      Fail(flag, "entry '" + item + "' must look like LAYER:VALUE (e.g. 3:5)");
    const std::string value = item.substr(colon + 1);
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      Fail(flag, "entry '" + item + "' has a value that is not a number");
    }
    if (v != static_cast<int>(v)) Fail(flag + " " + item.substr(0, colon), "must be an integer");
    out.emplace_back(ParseLayer(item.substr(0, colon), num_layers, flag), static_cast<int>(v));
  }
  return out;
}

}  // namespace

std::vector<ExpertRef> ParseExpertList(const std::string& text, int num_layers,
                                       const std::string& flag) {
  std::vector<ExpertRef> out;
  for (const auto& [layer, expert] : ParsePairs(text, num_layers, flag))
    for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? num_layers : layer + 1); ++l)
      out.push_back({l, expert});
  return out;
}

RoutingPolicy PolicyFromFlags(const std::string& disable, const std::string& mode,
                              const std::string& top_k, const std::string& top_r,
                              const LlamaMoeConfig& c) {
  const int L = c.num_hidden_layers;
  RoutingPolicy p = RoutingPolicy::Disabling(
      ParseExpertList(disable, L, "--disable"),
      mode.empty() ? DisableMode::kReroute : ParseDisableMode(mode, "--mode"), L);
  for (const auto& [layer, k] : ParsePairs(top_k, L, "--top-k")) p.SetTopK(layer, k, L);
  for (const auto& [layer, r] : ParsePairs(top_r, L, "--top-r")) p.SetTopR(layer, r, L);
  return p;
}

}  // namespace moe
