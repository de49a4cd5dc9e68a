#include "analysis/replay/route_import.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/int_array.h"
#include "core/safetensors_file.h"

namespace moe {
namespace {

constexpr const char* kRoutesTensor = "routed_experts";
constexpr const char* kTokenIdsTensor = "token_ids";

std::string Field(const std::filesystem::path& file, const char* tensor) {
  return IsSafetensorsPath(file) ? tensor : "the array";
}

// The model layer of each of the file's layers.
std::vector<int> LayerMap(int file_layers, const ModelConfig& c, const std::string& path,
                          const std::string& field) {
  std::vector<int> moe_layers;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    if (c.IsMoeLayer(l)) moe_layers.push_back(l);
  if (file_layers == static_cast<int>(moe_layers.size())) return moe_layers;
  if (file_layers == c.num_hidden_layers) {
    std::vector<int> all(static_cast<size_t>(file_layers));
    for (int l = 0; l < file_layers; ++l) all[static_cast<size_t>(l)] = l;
    return all;
  }
  Fail(path, field + " has " + std::to_string(file_layers) + " layers; the model has " +
                 std::to_string(c.num_hidden_layers) + " (" + std::to_string(moe_layers.size()) +
                 " MoE layers)");
}

// The token ids must be those of the corpus, row by row.
void CheckTokenIds(const IntArray& ids, const std::string& path, const std::string& field,
                   const Corpus& corpus) {
  if (ids.shape.size() != 1 || ids.shape[0] != corpus.tokens())
    Fail(path, field + " has shape " + ShapeString(ids.shape) + "; expected [" +
                   std::to_string(corpus.tokens()) + "] (the corpus's tokens)");
  int64_t row = 0;
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    const CorpusDocument& doc = corpus.documents[d];
    for (size_t p = 0; p < doc.ids.size(); ++p, ++row)
      if (ids.values[static_cast<size_t>(row)] != doc.ids[p])
        Fail(path, field + "[" + std::to_string(row) + "] is " +
                       std::to_string(ids.values[static_cast<size_t>(row)]) + ", but document " +
                       std::to_string(d) + " ('" + doc.source_id + "') has token " +
                       std::to_string(doc.ids[p]) + " at position " + std::to_string(p) +
                       " (routes recorded for other tokens)");
  }
}

// One row of one layer: experts in range, distinct, at least one, -1 only after them.
void CheckRow(const int64_t* ids, int k, int experts, const std::string& path,
              const std::string& at) {
  if (ids[0] == -1) Fail(path, at + " names no expert");
  bool padded = false;
  for (int j = 0; j < k; ++j) {
    const int64_t e = ids[j];
    if (e == -1) {
      padded = true;
      continue;
    }
    if (e < 0 || e >= experts)
      Fail(path, at + "[" + std::to_string(j) + "] = " + std::to_string(e) +
                     " is out of range (0.." + std::to_string(experts - 1) + ")");
    if (padded) Fail(path, at + "[" + std::to_string(j) + "] follows a -1 pad");
    if (std::find(ids, ids + j, e) != ids + j)
      Fail(path, at + " names expert " + std::to_string(e) + " twice");
  }
}

}  // namespace

RouteTable ImportRoutes(const RouteFiles& files, const Corpus& corpus, const ModelConfig& c) {
  const std::string path = files.routes.string();
  if (!c.is_moe) Fail(path, "the model has no router; there is nothing to replay");
  RouteArrays a;
  a.routes = ReadIntArray(files.routes, kRoutesTensor);
  a.routes_file = path;
  a.routes_field = Field(files.routes, kRoutesTensor);
  const bool ids_inside = files.token_ids.empty();
  if (ids_inside && !IsSafetensorsPath(files.routes))
    Fail(path, "a .npy routes file needs its token ids beside it (--token-ids)");
  const std::filesystem::path ids_file = ids_inside ? files.routes : files.token_ids;
  a.token_ids = ReadIntArray(ids_file, kTokenIdsTensor);
  a.token_ids_file = ids_file.string();
  a.token_ids_field = Field(ids_file, kTokenIdsTensor);
  return RouteTableOf(a, corpus, c);
}

RouteTable RouteTableOf(const RouteArrays& a, const Corpus& corpus, const ModelConfig& c) {
  const std::string& path = a.routes_file;
  const std::string& field = a.routes_field;
  const IntArray& routes = a.routes;
  if (!c.is_moe) Fail(path, "the model has no router; there is nothing to replay");
  if (routes.shape.size() != 3)
    Fail(path,
         field + " has shape " + ShapeString(routes.shape) + "; expected [tokens, layers, k]");
  const int64_t N = routes.shape[0];
  const int file_layers = static_cast<int>(routes.shape[1]), k = static_cast<int>(routes.shape[2]);
  if (N != corpus.tokens())
    Fail(path, field + " has " + std::to_string(N) + " token rows; the corpus has " +
                   std::to_string(corpus.tokens()) + " tokens");
  if (k < 1 || k > c.num_experts)
    Fail(path, field + " has k = " + std::to_string(k) + "; expected 1.." +
                   std::to_string(c.num_experts));
  const std::vector<int> layer_of = LayerMap(file_layers, c, path, field);
  CheckTokenIds(a.token_ids, a.token_ids_file, a.token_ids_field, corpus);

  RouteTable t;
  t.layers = c.num_hidden_layers;
  t.k = k;
  t.doc_offset.push_back(0);
  for (const CorpusDocument& doc : corpus.documents)
    t.doc_offset.push_back(t.doc_offset.back() + static_cast<int64_t>(doc.ids.size()));
  t.ids.assign(static_cast<size_t>(N) * t.layers * k, -1);
  for (int64_t i = 0; i < N; ++i)
    for (int fl = 0; fl < file_layers; ++fl) {
      const int l = layer_of[static_cast<size_t>(fl)];
      const int64_t* row = routes.values.data() + (i * file_layers + fl) * k;
      if (!c.IsMoeLayer(l)) {  // a full-layer file: dense layers carry no route
        if (std::any_of(row, row + k, [](int64_t e) { return e != -1; }))
          Fail(path, field + "[" + std::to_string(i) + ", " + std::to_string(fl) +
                         "] routes a dense layer (its row must be all -1)");
        continue;
      }
      CheckRow(row, k, c.num_experts, path,
               field + "[" + std::to_string(i) + ", " + std::to_string(fl) + "]");
      std::copy(row, row + k, t.ids.begin() + (i * t.layers + l) * k);
    }
  return t;
}

void WriteRoutes(const std::filesystem::path& path, const RouteTable& t, const Corpus& corpus,
                 const ModelConfig& c) {
  if (!IsSafetensorsPath(path)) Fail(path.string(), "routes are written as .safetensors");
  if (t.rows() != corpus.tokens()) Fail(path.string(), "the routes do not cover the corpus");
  std::vector<int> moe_layers;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    if (c.IsMoeLayer(l)) moe_layers.push_back(l);
  const int64_t N = t.rows(), M = static_cast<int64_t>(moe_layers.size());
  std::vector<int32_t> ids(static_cast<size_t>(N * M * t.k)), tokens;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t m = 0; m < M; ++m)
      std::copy_n(t.ids.data() + (i * t.layers + moe_layers[static_cast<size_t>(m)]) * t.k, t.k,
                  ids.begin() + (i * M + m) * t.k);
  for (const CorpusDocument& doc : corpus.documents)
    tokens.insert(tokens.end(), doc.ids.begin(), doc.ids.end());
  WriteSafetensors(path.string(), {MakeI32Tensor(kRoutesTensor, {N, M, t.k}, ids.data()),
                                   MakeI32Tensor(kTokenIdsTensor, {N}, tokens.data())});
}

}  // namespace moe
