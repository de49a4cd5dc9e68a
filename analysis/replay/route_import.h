#pragma once
// Routes recorded by another engine (vLLM's routed experts, ...), read from files and lined up
// with the corpus they were recorded on (docs/route-replay.md): row i of the routes is the i-th
// token of the corpus, documents in corpus order, each from its first token.
#include <filesystem>
#include <string>

#include "analysis/corpus/corpus.h"
#include "core/config.h"
#include "core/int_array.h"
#include "core/routing_policy.h"

namespace moe {

struct RouteFiles {
  // .npy [tokens, layers, k], or .safetensors with the tensor "routed_experts" of that shape.
  std::filesystem::path routes;
  // .npy [tokens]; empty: the tensor "token_ids" of a .safetensors routes file.
  std::filesystem::path token_ids;
};

// The table of forced routes (RoutingPolicy::routes), one row per corpus token. `layers` of the
// file is the model's layer count or its MoE layer count (then the rows map to the MoE layers in
// order); -1 pads a row after its experts. Throws Error naming the file and field: wrong shape,
// token ids that differ from the corpus, expert ids out of range, an expert twice in a row, a
// row without experts.
RouteTable ImportRoutes(const RouteFiles& files, const Corpus& corpus, const ModelConfig& config);

// The same from arrays already in memory (the Python module's numpy arrays); errors name
// `*_file` and `*_field`.
struct RouteArrays {
  IntArray routes;     // [tokens, layers, k]
  IntArray token_ids;  // [tokens]
  std::string routes_file = "routes", routes_field = "routed_experts";
  std::string token_ids_file = "token_ids", token_ids_field = "token_ids";
};
RouteTable RouteTableOf(const RouteArrays& arrays, const Corpus& corpus, const ModelConfig& config);

// Writes `routes` in the format ImportRoutes reads: a .safetensors file with "routed_experts"
// (I32 [tokens, MoE layers, k]) and "token_ids" (I32 [tokens], the corpus's tokens in order).
void WriteRoutes(const std::filesystem::path& path, const RouteTable& routes, const Corpus& corpus,
                 const ModelConfig& config);

}  // namespace moe
