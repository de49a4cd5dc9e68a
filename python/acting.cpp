#include "python/acting.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <optional>
#include <string>
#include <vector>

#include "analysis/cache/cache_sim.h"
#include "analysis/prune/importance_file.h"
#include "analysis/prune/prune_checkpoint.h"
#include "analysis/prune/prune_plan.h"

namespace moe::python {
namespace {

// [rows, cols] float64 array of `pick` over rows × cols.
template <typename Pick>
py::array_t<double> Grid(int rows, int cols, Pick pick) {
  py::array_t<double> a({rows, cols});
  auto v = a.mutable_unchecked<2>();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) v(r, c) = pick(r, c);
  return a;
}

// {score: {value, ci_low, ci_high} [L, E]}, routed [L, E], moe_layer [L], and the counts.
py::dict ImportanceDict(const ExpertImportance& imp) {
  const int L = imp.layers, E = imp.experts;
  py::dict scores;
  for (int s = 0; s < kImportanceScores; ++s) {
    const auto score = static_cast<ImportanceScore>(s);
    if (score == ImportanceScore::kOutputChange && !imp.has_output_change) continue;
    py::dict one;
    one["value"] = Grid(L, E, [&](int l, int e) { return imp.At(score, l, e).value; });
    one["ci_low"] = Grid(L, E, [&](int l, int e) { return imp.At(score, l, e).ci_low; });
    one["ci_high"] = Grid(L, E, [&](int l, int e) { return imp.At(score, l, e).ci_high; });
    scores[ImportanceScoreName(score)] = one;
  }
  py::array_t<int64_t> routed({L, E});
  std::copy(imp.routed.begin(), imp.routed.end(), routed.mutable_data());
  std::vector<bool> moe_layer(imp.moe_layer.begin(), imp.moe_layer.end());
  py::dict out;
  out["scores"] = scores;
  out["routed"] = routed;
  out["moe_layer"] = moe_layer;
  out["layers"] = L;
  out["experts"] = E;
  out["top_k"] = imp.top_k;
  out["documents"] = imp.documents;
  out["tokens"] = imp.tokens;
  out["bootstrap"] = imp.bootstrap;
  out["ci_level"] = imp.ci_level;
  return out;
}

py::dict Importance(Model& m, const py::list& documents, bool output_change, int bootstrap,
                    uint64_t seed, int batch_size, std::optional<std::filesystem::path> output) {
  const Corpus corpus = DocumentsCorpus(m, documents);
  ImportanceOptions o;
  o.output_change = output_change;
  o.bootstrap = bootstrap;
  o.seed = seed;
  o.batch_size = batch_size;
  ExpertImportance imp;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    imp = MeasureExpertImportance(*m.loaded.model, corpus, o);
  }
  imp.model = m.loaded.dir.string();
  if (output) WriteImportance(*output, imp);
  return ImportanceDict(imp);
}

py::dict Prune(const std::filesystem::path& model_dir, const std::filesystem::path& importance,
               const std::string& score, double ratio, const std::filesystem::path& output,
               bool global, bool merge, uint64_t seed) {
  const ExpertImportance imp = ReadImportance(importance);
  const PrunePlan plan =
      PlanPruning(imp, {ParsePruneCriterion(score, "score"), ratio, global, seed});
  PruneWriteResult r;
  {
    py::gil_scoped_release release;
    r = WritePrunedCheckpoint(model_dir, plan, output, {merge, imp.routed});
  }
  py::list merges;
  for (const MergeAssignment& a : r.merges) {
    py::dict d;
    d["layer"] = a.layer;
    d["removed"] = a.removed;
    d["into"] = a.into;
    d["similarity"] = a.similarity;
    merges.append(d);
  }
  py::dict out;
  out["removed"] = plan.removed;
  out["kept"] = plan.kept;
  out["experts_before"] = r.experts_before;
  out["experts_after"] = r.experts_after;
  out["top_k"] = r.top_k;
  out["count_key"] = r.count_key;
  out["equals_reroute"] = r.equals_reroute;
  out["merges"] = merges;
  out["output"] = output;
  return out;
}

// The report's rows as columns: numpy arrays, and lists of names for domain and policy.
py::dict CacheSimDict(const CacheSimReport& r) {
  const size_t n = r.rows.size();
  auto column = [&](auto field) {
    py::array_t<double> a(static_cast<py::ssize_t>(n));
    double* v = a.mutable_data();
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(r.rows[i].*field);
    return a;
  };
  auto int_column = [&](auto field) {
    py::array_t<int64_t> a(static_cast<py::ssize_t>(n));
    int64_t* v = a.mutable_data();
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(r.rows[i].*field);
    return a;
  };
  std::vector<std::string> domain, policy;
  for (const CacheSimRow& x : r.rows) {
    domain.push_back(x.domain < static_cast<int>(r.domains.size())
                         ? r.domains[static_cast<size_t>(x.domain)]
                         : std::string("all"));
    policy.push_back(CachePolicyName(x.policy));
  }
  py::dict rows;
  rows["layer"] = int_column(&CacheSimRow::layer);
  rows["domain"] = domain;
  rows["policy"] = policy;
  rows["capacity"] = int_column(&CacheSimRow::capacity);
  rows["hit_rate"] = column(&CacheSimRow::hit_rate);
  rows["ci_low"] = column(&CacheSimRow::ci_low);
  rows["ci_high"] = column(&CacheSimRow::ci_high);
  rows["misses_per_token"] = column(&CacheSimRow::misses_per_token);
  rows["bytes_per_token"] = column(&CacheSimRow::bytes_per_token);
  rows["requests"] = int_column(&CacheSimRow::requests);
  rows["tokens"] = int_column(&CacheSimRow::tokens);
  rows["docs"] = int_column(&CacheSimRow::docs);
  rows["predicted_hit_rate"] = column(&CacheSimRow::predicted_hit_rate);
  rows["prefetch_accuracy"] = column(&CacheSimRow::prefetch_accuracy);
  rows["accuracy_ci_low"] = column(&CacheSimRow::accuracy_ci_low);
  rows["accuracy_ci_high"] = column(&CacheSimRow::accuracy_ci_high);
  rows["prefetches_per_token"] = column(&CacheSimRow::prefetches_per_token);
  rows["wasted_bytes_per_token"] = column(&CacheSimRow::wasted_bytes_per_token);
  std::vector<std::string> policies;
  for (CachePolicy p : r.options.policies) policies.push_back(CachePolicyName(p));
  py::dict out;
  out["trace"] = r.trace;
  out["layers"] = r.layers;
  out["experts"] = r.experts;
  out["top_k"] = r.top_k;
  out["domains"] = r.domains;
  out["expert_bytes"] = r.expert_bytes;
  out["policies"] = policies;
  out["capacities"] = r.options.capacities;
  out["prefetch_budget"] = r.options.prefetch_budget;
  out["cold_start"] = r.options.cold_start;
  out["rows"] = rows;
  return out;
}

py::dict CacheSim(const std::filesystem::path& trace, const std::vector<int>& capacities,
                  const std::vector<std::string>& policies, bool cold_start, double expert_bytes,
                  int prefetch_budget, double ci_level, int min_documents) {
  CacheSimOptions o;
  o.capacities = capacities;
  for (const std::string& p : policies) o.policies.push_back(ParseCachePolicy(p, "policies"));
  o.cold_start = cold_start;
  o.expert_bytes = expert_bytes;
  o.prefetch_budget = prefetch_budget;
  o.ci_level = ci_level;
  o.min_documents = min_documents;
  CacheSimReport r;
  {
    py::gil_scoped_release release;
    r = SimulateTraceCache(trace, o);
  }
  return CacheSimDict(r);
}

}  // namespace

void BindActing(py::module_& m, py::class_<Model>& model) {
  model.def("importance", &Importance, py::arg("documents"), py::kw_only(),
            py::arg("output_change") = true, py::arg("bootstrap") = 200, py::arg("seed") = 0,
            py::arg("batch_size") = 8, py::arg("output") = py::none(),
            "Expert importance over documents (lists of token ids), as `moescope importance`: "
            "{scores: {name: {value, ci_low, ci_high} [L, E]}, routed [L, E], moe_layer, ...}; "
            "output=PATH also writes the importance file that prune() reads");
  m.def(
      "read_importance",
      [](const std::filesystem::path& path) { return ImportanceDict(ReadImportance(path)); },
      py::arg("path"), "An importance file of `moescope importance` as Model.importance returns");
  m.def("prune", &Prune, py::arg("model_dir"), py::kw_only(), py::arg("importance"),
        py::arg("score"), py::arg("ratio"), py::arg("output"), py::arg("global_") = false,
        py::arg("merge") = false, py::arg("seed") = 0,
        "Writes a checkpoint with the lowest-scoring experts removed (or merged), as `moescope "
        "prune`: {removed, kept (per layer), experts_before, experts_after, count_key, "
        "equals_reroute, merges}");
  m.def("cache_sim", &CacheSim, py::arg("trace"), py::kw_only(),
        py::arg("capacities") = std::vector<int>{},
        py::arg("policies") = std::vector<std::string>{}, py::arg("cold_start") = false,
        py::arg("expert_bytes") = 0.0, py::arg("prefetch_budget") = 0, py::arg("ci_level") = 0.95,
        py::arg("min_documents") = 5,
        "Expert-cache simulation of a trace, as `moescope cache-sim`: {domains, policies, "
        "capacities, expert_bytes, rows: {column: array}} with cache.csv's columns");
}

}  // namespace moe::python
