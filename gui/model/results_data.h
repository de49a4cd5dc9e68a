#pragma once
// What the views of the pruning curve, the expert-cache curves and the route replay read: the
// exports of `moescope prune-curve`, `moescope cache-sim` and `moescope replay`, read by the
// library's typed readers (results_loader.h) and copied into plain arrays. Nothing here computes
// a statistic. No HDF5, Qt or ImGui, like studio_data.h.
//
// Shapes: M domains of the file (row M = all documents).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace moe::studio {

// A value with its interval over documents; NaN where there is none.
struct ValueCi {
  double value = std::numeric_limits<double>::quiet_NaN();
  double low = std::numeric_limits<double>::quiet_NaN();
  double high = std::numeric_limits<double>::quiet_NaN();
  bool has_interval() const { return !std::isnan(low) && !std::isnan(high); }
};

// One pruned set of the curve (policy kind "prune", named "<score>-<percent>%").
struct PruneSet {
  std::string name, score;
  double ratio = 0;                // share of each MoE layer's experts removed
  std::vector<ValueCi> delta_nll;  // [M + 1] NLL(pruned) - NLL(unpruned), nats per token
  std::vector<int64_t> tokens;     // [M + 1] scored predictions
  // Against its random controls (<file>.vs-random.csv), [M + 1]; NaN without the CSV.
  int controls = 0;
  std::vector<double> random_delta_nll;  // mean ΔNLL of the controls
  std::vector<ValueCi> difference;       // set - controls
  std::vector<double> p_value, q_value;  // two-sided bootstrap p, Benjamini-Hochberg q
};

// One random control (a random set of as many experts per layer), drawn once per ratio: the
// controls of every score at one ratio that remove the same experts are one.
struct PruneControl {
  std::string name;
  double ratio = 0;
  std::vector<ValueCi> delta_nll;  // [M + 1]
};

struct PruneCurveData {
  std::string source, comparison_source;  // the results file; its .vs-random.csv or ""
  std::vector<std::string> domains;       // [M]
  std::vector<std::string> scores;        // in the order of the sweep
  std::vector<double> ratios;             // ascending
  std::vector<PruneSet> sets;             // sweep order
  std::vector<PruneControl> controls;     // by ratio
  bool empty() const { return sets.empty(); }
};

// One row of cache.json: a layer, domain row, policy and cache size.
struct CacheCurveRow {
  int layer = 0, domain = 0, policy = 0, capacity = 0;
  ValueCi hit_rate;  // hits / requests, interval over documents
  double misses_per_token = 0, bytes_per_token = 0;
  int64_t requests = 0, tokens = 0, docs = 0;
  std::vector<double> extra;  // [extra_fields]
};

struct CacheCurveData {
  std::string source;
  int layers = 0, experts = 0, top_k = 0;
  bool cold_start = false;
  double ci_level = 0;
  std::vector<double> expert_bytes;       // [L] bytes per miss
  std::vector<std::string> domains;       // [M]
  std::vector<std::string> policies;      // as the file names them (prefetch policies included)
  std::vector<std::string> extra_fields;  // further numeric fields of the rows
  std::vector<int> capacities;            // ascending
  std::vector<CacheCurveRow> rows;
  bool empty() const { return rows.empty(); }
  // The row of (layer, domain row, policy, capacity), or null.
  const CacheCurveRow* Find(int layer, int domain, int policy, int capacity) const {
    for (const CacheCurveRow& r : rows)
      if (r.layer == layer && r.domain == domain && r.policy == policy && r.capacity == capacity)
        return &r;
    return nullptr;
  }
};

// One audit of the replay report: B (subject) against A (reference).
struct ReplayAuditData {
  std::string reference, subject;
  struct Layer {
    int layer = 0;
    int64_t tokens = 0;
    ValueCi set_agreement, top1_agreement;
  };
  std::vector<Layer> layers;
  std::vector<std::string> domains;  // [M]
  // [M + 1]: NLL(B) - NLL(A) and next-token agreement, with the mean NLL of each.
  std::vector<ValueCi> delta_nll, next_token_agreement;
  std::vector<double> reference_nll, subject_nll;
  std::vector<int64_t> tokens;
};

struct ReplayData {
  std::string source;
  std::vector<ReplayAuditData> audits;  // in file order
  bool empty() const { return audits.empty(); }
};

struct ResultsData {
  PruneCurveData prune;
  CacheCurveData cache;
  ReplayData replay;
};

}  // namespace moe::studio
