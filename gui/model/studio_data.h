#pragma once
// What moescope-studio's views read: plain, immutable data prepared from analysis/ and core/
// results by studio_loader.h. Nothing here computes a statistic; every number was produced by
// the analysis API (TraceReader, RoutingAccumulator, BuildStatsReport) and is only copied into
// arrays the views can index directly. This header includes no HDF5, Qt or ImGui, so the views
// library (and its headless tests) can use it without linking the analysis library.
//
// Shapes: M domains, L layers, E experts, K = top_k (kmax), T tokens of one document.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "analysis/stats/metric_id.h"
#include "analysis/trace/trace_attributes.h"
#include "gui/model/results_data.h"

namespace moe::studio {

inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// The trace's windowing rule (the "windowing" attribute: analysis/run/trace_windows.h's
// WindowRule and the model's context length), as the loader parsed it.
struct WindowingFacts {
  bool known = false;  // false: the attribute is empty or not the JSON the tracer writes
  int64_t max_window = 0, stride = 0, context_length = 0;
};

// The trace's root attributes (docs/trace-format.md) and what the loader derived from them.
struct TraceFacts {
  // As TraceReader reads them, except `complete`: whether the trace was complete when the
  // statistics were read (a trace still being written may complete while it loads).
  TraceAttributes info;
  bool policy_empty = true;  // the policy changes nothing (core RoutingPolicy::empty)
  // The model's config.json (info.model_config), flattened to (key, value) rows in file order.
  std::vector<std::pair<std::string, std::string>> config;
  WindowingFacts windowing;  // info.windowing, parsed
  // The committed prefix the statistics cover.
  int64_t documents = 0, tokens = 0, logit_rows = 0;

  bool Routes(int layer) const {
    return layer < 0 || layer >= static_cast<int>(info.moe_layers.size()) ||
           info.moe_layers[layer] != 0;
  }
  // `layer` clamped to the trace's layers; a dense layer (no router, nothing to show) gives way
  // to the first layer that routes.
  int ShownLayer(int layer) const {
    const int L = info.num_layers;
    layer = layer < 0 ? 0 : (layer >= L ? (L > 0 ? L - 1 : 0) : layer);
    if (Routes(layer)) return layer;
    for (int l = 0; l < L; ++l)
      if (Routes(l)) return l;
    return layer;
  }
};

// One expert-level metric of the statistics report (analysis/stats/metrics.h), every domain
// and layer: cells [domain, layer, expert] with domain M = all domains. NaN where the report
// has no row (e.g. a domain-only metric in the "all" row).
struct ExpertMetric {
  Metric id = Metric::kLoadCount;
  std::string name, description;
  int domains = 0, layers = 0, experts = 0;  // domains = M + 1
  std::vector<double> value, ci_low, ci_high, baseline, n;
  std::vector<double> q;  // Benjamini–Hochberg q of a p-value metric, else kNoValue

  size_t Index(int domain, int layer, int expert) const {
    return (static_cast<size_t>(domain) * layers + layer) * experts + expert;
  }
  double At(int domain, int layer, int expert) const { return value[Index(domain, layer, expert)]; }
};

// One per-layer metric: cells [domain, layer].
struct LayerMetric {
  Metric id = Metric::kTokens;
  std::string name, description;
  int domains = 0, layers = 0;
  std::vector<double> value, ci_low, ci_high, baseline;

  size_t Index(int domain, int layer) const { return static_cast<size_t>(domain) * layers + layer; }
  double At(int domain, int layer) const { return value[Index(domain, layer)]; }
};

// A token most often routed to an expert (analysis/stats/vocab_specialization.h, TopToken).
struct TopTokenEntry {
  int32_t token = -1;
  std::string text;         // display text (decoded piece), or "#id" without a tokenizer
  int64_t count = 0;        // N_{l,x,e}
  int64_t occurrences = 0;  // N_x
  double share = 0;         // VS_l(e, x)
};

// Vocabulary specialization's top tokens per (layer, expert); empty when the statistics had no
// vocabulary tables.
struct TopTokens {
  int layers = 0, experts = 0, top_n = 0;
  std::vector<TopTokenEntry> entries;  // [L, E, top_n], unfilled: token -1
  const TopTokenEntry& At(int layer, int expert, int i) const {
    return entries[(static_cast<size_t>(layer) * experts + expert) * top_n + i];
  }
  bool empty() const { return entries.empty(); }
};

// The statistics report's expert-pair tables (docs/routing-metrics.md §2.7) for every domain row
// (M = all domains), with their conditional rates (analysis/stats/pair_rates.h) and seriation
// orders (analysis/stats/seriation.h) computed by the loader.
struct PairTables {
  int domains = 0, layers = 0, experts = 0;  // domains = M + 1
  std::vector<int64_t> coactivation;         // [d, L, E, E] tokens with i and j; diagonal c_i
  std::vector<double> coactivation_rate;     // [d, L, E, E] P(j | i), NaN on the diagonal
  std::vector<int> coactivation_order;       // [d, L, E] experts by Ochiai similarity
  std::vector<int64_t> transitions;          // [d, L-1, E, E] tokens with i at l, j at l+1
  std::vector<double> transition_rate;       // [d, L-1, E, E] P(j at l+1 | i at l)
  std::vector<int> transition_row_order;     // [d, L-1, E] rows by cosine of their rates
  std::vector<int> transition_col_order;     // [d, L-1, E] columns likewise

  bool empty() const { return coactivation.empty(); }
  // Offset of the [E, E] block of (domain row, layer) in the co-activation arrays, and of
  // (domain row, layer -> layer + 1) in the transition arrays.
  size_t CoBlock(int d, int l) const {
    return (static_cast<size_t>(d) * layers + l) * experts * experts;
  }
  size_t TransitionBlock(int d, int l) const {
    return (static_cast<size_t>(d) * (layers - 1) + l) * experts * experts;
  }
  // Offset of the [E] order of (domain row, layer) in the *_order arrays.
  size_t CoOrder(int d, int l) const { return (static_cast<size_t>(d) * layers + l) * experts; }
  size_t TransitionOrder(int d, int l) const {
    return (static_cast<size_t>(d) * (layers - 1) + l) * experts;
  }
};

struct DocumentEntry {
  int64_t index = 0;
  int16_t domain = 0;
  int64_t tokens = 0;
  std::string source_id;
};

// The token and routing rows of one document (TraceReader::ReadTokens / ReadRouting).
struct DocumentRouting {
  int64_t index = -1;
  int16_t domain = 0;
  std::string source_id;
  int64_t token_begin = 0;  // row of the first token in the trace
  int layers = 0, kmax = 0;
  std::vector<int32_t> token_id, position;  // [T]
  std::vector<float> nll;                   // [T], NaN where nothing was predicted
  std::vector<std::string> text;            // [T] display text of each token ("" for bytes
                                            // continuing the character on the token before)
  std::vector<int16_t> ids;                 // [T, L, K], -1 pads
  std::vector<float> weights;               // [T, L, K], 0 pads

  int64_t size() const { return static_cast<int64_t>(token_id.size()); }
  size_t Row(int64_t t, int layer) const {
    return (static_cast<size_t>(t) * layers + layer) * kmax;
  }
  // The first (highest-weight) selection of token t at `layer`, or -1.
  int Top1(int64_t t, int layer) const { return ids[Row(t, layer)]; }
};

// The model opened next to the trace (File > Open model), if any.
struct ModelFacts {
  std::string dir;          // empty when no model is open
  std::string tokens_from;  // where token text comes from, or why it is shown as ids
  std::vector<std::pair<std::string, std::string>> config;
};

struct StudioData {
  TraceFacts trace;
  ModelFacts model;
  std::vector<std::string> domains;                      // [M]
  std::vector<int64_t> domain_documents, domain_tokens;  // [M]
  std::vector<DocumentEntry> documents;                  // [D]

  // From the statistics report; every expert-level metric and every per-layer metric.
  std::vector<ExpertMetric> expert_metrics;
  std::vector<LayerMetric> layer_metrics;
  double ci_level = 0;                  // of the intervals; 0 when there are none
  int bootstrap = 0, permutations = 0;  // as run (automatic permutation counts resolved)
  double fdr = 0.05;                    // level of the significance marks (Benjamini–Hochberg)
  TopTokens top_tokens;                 // input-token vocabulary specialization
  PairTables pairs;                     // co-activation and transitions

  // The selected document; null until loaded (the shell loads it when the selection moves).
  std::shared_ptr<const DocumentRouting> document;

  std::vector<std::string> notes;  // what is missing and why

  // Exports of prune-curve, cache-sim and replay (results_loader.h): found next to the trace or
  // opened; they do not need a trace.
  ResultsData results;

  bool empty() const { return trace.info.path.empty(); }
  int num_domains() const { return static_cast<int>(domains.size()); }
  // The metric's arrays, or null when the statistics do not have it.
  const ExpertMetric* FindExpertMetric(Metric id) const {
    for (const ExpertMetric& m : expert_metrics)
      if (m.id == id) return &m;
    return nullptr;
  }
  const LayerMetric* FindLayerMetric(Metric id) const {
    for (const LayerMetric& m : layer_metrics)
      if (m.id == id) return &m;
    return nullptr;
  }
};

}  // namespace moe::studio
