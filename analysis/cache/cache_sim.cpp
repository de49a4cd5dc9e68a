#include "analysis/cache/cache_sim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/cache/prefetch_cache.h"
#include "analysis/stats/resampling.h"
#include "analysis/trace/trace_reader.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json_value.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

std::vector<int> DefaultCapacities(int E, int K) {
  std::vector<int> c;
  if (E <= 16) {
    for (int i = 1; i <= E; ++i) c.push_back(i);
    return c;
  }
  for (int v : {K, 2 * K, E / 8, E / 4, E / 2})
    if (v >= 1 && v <= E) c.push_back(v);
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

// Bytes per miss at each layer: a bf16 SwiGLU expert (gate, up and down: 3·H·F values).
std::vector<double> ExpertBytes(const TraceAttributes& info, double given, int L) {
  if (given > 0) return std::vector<double>(static_cast<size_t>(L), given);
  const ModelConfig c = ModelConfig::FromJson(
      ParseJson(info.model_config, info.path + " model_config"), info.path + " model_config");
  std::vector<double> bytes;
  for (int l = 0; l < L; ++l) {
    const std::vector<int>& sizes = c.size_experts.at(static_cast<size_t>(l));
    double width = 0;
    for (int f : sizes) width += f;
    bytes.push_back(3.0 * c.hidden_size * width / static_cast<double>(sizes.size()) * 2.0);
  }
  return bytes;
}

// Per document sums of one layer's simulation under one policy and cache size.
struct DocSums {
  std::vector<double> requests, tokens, hits, predicted_hits, fetched, fetched_used;
  explicit DocSums(int64_t docs)
      : requests(static_cast<size_t>(docs)),
        tokens(requests),
        hits(requests),
        predicted_hits(requests),
        fetched(requests),
        fetched_used(requests) {}
  void AddPerToken(const std::vector<int64_t>& doc_of, const std::vector<int32_t>& per_token,
                   std::vector<double> DocSums::*field) {
    for (size_t t = 0; t < per_token.size(); ++t)
      (this->*field)[static_cast<size_t>(doc_of[t])] += per_token[t];
  }
};

// One row's figures over the documents `in_row` marks.
void FillRow(CacheSimRow& row, const DocSums& s, const std::vector<uint8_t>& in_row,
             double expert_bytes, const CacheSimOptions& o) {
  ClusterRatio hit, predicted, accuracy;
  double tokens = 0, fetched = 0;
  for (size_t d = 0; d < in_row.size(); ++d) {
    if (!in_row[d]) continue;
    hit.Add(s.hits[d], s.requests[d]);
    predicted.Add(s.predicted_hits[d], s.requests[d]);
    if (s.fetched[d] > 0) accuracy.Add(s.fetched_used[d], s.fetched[d]);  // documents that fetched
    tokens += s.tokens[d];
    fetched += s.fetched[d];
  }
  auto interval = [&](const ClusterRatio& ratio) {
    return ratio.groups >= o.min_documents && ratio.n > 0 ? ratio.Interval(o.ci_level)
                                                          : std::pair{kNan, kNan};
  };
  row.hit_rate = hit.Ratio();
  std::tie(row.ci_low, row.ci_high) = interval(hit);
  row.requests = static_cast<int64_t>(hit.n);
  row.tokens = static_cast<int64_t>(tokens);
  row.docs = hit.groups;
  const double per_token = tokens > 0 ? 1 / tokens : kNan;
  row.misses_per_token = (hit.n - hit.a) * per_token;
  row.bytes_per_token = (hit.n - hit.a + fetched) * per_token * expert_bytes;
  if (!IsPrefetchPolicy(row.policy)) return;
  row.predicted_hit_rate = predicted.Ratio();
  row.prefetch_accuracy = accuracy.Ratio();
  std::tie(row.accuracy_ci_low, row.accuracy_ci_high) = interval(accuracy);
  row.prefetches_per_token = fetched * per_token;
  row.wasted_bytes_per_token = (fetched - accuracy.a) * per_token * expert_bytes;
}

// The requests of every layer (executed experts only, weight > 0, as the statistics count them)
// and each token's document.
struct TraceRequests {
  std::vector<RequestSequence> requests;  // [L]
  std::vector<uint8_t> first_of_doc;      // [N] 1 at each document's first token
  std::vector<int64_t> doc_of;            // [N]
};

TraceRequests ReadRequests(const TraceReader& reader) {
  const int L = reader.info().num_layers;
  const int64_t N = reader.num_tokens(), D = reader.num_documents();
  TraceRequests out{std::vector<RequestSequence>(static_cast<size_t>(L)),
                    std::vector<uint8_t>(static_cast<size_t>(N), 0),
                    std::vector<int64_t>(static_cast<size_t>(N))};
  for (int64_t d = 0; d < D; ++d) {
    const TraceDocument doc = reader.Document(d);
    if (doc.tokens() > 0) out.first_of_doc[static_cast<size_t>(doc.token_begin)] = 1;
    for (int64_t t = doc.token_begin; t < doc.token_end; ++t)
      out.doc_of[static_cast<size_t>(t)] = d;
  }
  constexpr int64_t kBlock = 1 << 16;
  std::vector<int16_t> executed;
  for (int64_t begin = 0; begin < N; begin += kBlock) {
    const RoutingRows rows = reader.ReadRouting(begin, std::min(kBlock, N - begin));
    for (int64_t t = 0; t < rows.count; ++t)
      for (int l = 0; l < L; ++l) {
        executed.clear();
        const auto ids = rows.Ids(t, l);
        const auto w = rows.Weights(t, l);
        for (size_t j = 0; j < ids.size(); ++j)
          if (ids[j] >= 0 && w[j] > 0) executed.push_back(ids[j]);
        out.requests[static_cast<size_t>(l)].AddToken(executed);
      }
  }
  return out;
}

}  // namespace

CacheSimReport SimulateTraceCache(const std::filesystem::path& path, const CacheSimOptions& o) {
  const TraceReader reader(path);
  const TraceAttributes& info = reader.info();
  const int L = info.num_layers, E = info.num_experts, K = info.top_k;
  CacheSimReport rep;
  rep.trace = path.string();
  rep.layers = L;
  rep.experts = E;
  rep.top_k = K;
  rep.domains = reader.domains();
  rep.options = o;
  if (rep.options.capacities.empty()) rep.options.capacities = DefaultCapacities(E, K);
  if (rep.options.policies.empty())
    rep.options.policies = {CachePolicy::kLru, CachePolicy::kLfu, CachePolicy::kBelady,
                            CachePolicy::kPrefetchToken, CachePolicy::kPrefetchLayer};
  for (size_t i = 0; i < rep.options.policies.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (rep.options.policies[i] == rep.options.policies[j])
        Fail("--policies",
             std::string(CachePolicyName(rep.options.policies[i])) + " is listed twice");
  if (rep.options.prefetch_budget < 0)
    Fail("--prefetch-budget", "must be at least 0 (0: the trace's top-k)");
  if (rep.options.prefetch_budget == 0) rep.options.prefetch_budget = K;
  for (int c : rep.options.capacities)
    if (c < 1 || c > E)
      Fail("--capacities", "cache size " + std::to_string(c) + " is outside 1.." +
                               std::to_string(E) + " (the layer's experts)");
  rep.expert_bytes = ExpertBytes(info, o.expert_bytes, L);

  const TraceRequests tr = ReadRequests(reader);
  const int64_t N = reader.num_tokens(), D = reader.num_documents();
  const std::vector<RequestSequence>& requests = tr.requests;
  const std::vector<int64_t>& doc_of = tr.doc_of;
  const std::span<const uint8_t> resets =
      o.cold_start ? std::span<const uint8_t>(tr.first_of_doc) : std::span<const uint8_t>();

  const int M = static_cast<int>(rep.domains.size());
  const std::span<const int16_t> doc_domain = reader.doc_domains();
  const size_t P = rep.options.policies.size(), C = rep.options.capacities.size();
  for (int l = 0; l < L; ++l) {
    const RequestSequence& r = requests[static_cast<size_t>(l)];
    // Requests and tokens per document (the same for every policy and size).
    DocSums base(D);
    for (int64_t t = 0; t < N; ++t) {
      const size_t d = static_cast<size_t>(doc_of[static_cast<size_t>(t)]);
      base.requests[d] += static_cast<double>(r.token_begin[t + 1] - r.token_begin[t]);
      base.tokens[d] += 1;
    }
    const size_t first_row = rep.rows.size();
    for (int m = 0; m <= M; ++m)
      for (CachePolicy policy : rep.options.policies)
        for (int capacity : rep.options.capacities) rep.rows.push_back({l, m, policy, capacity});
    for (size_t pi = 0; pi < P; ++pi) {
      const CachePolicy policy = rep.options.policies[pi];
      RequestSequence predictions;
      if (policy == CachePolicy::kPrefetchToken)
        predictions = PreviousTokenPredictions(r, rep.options.prefetch_budget, resets);
      else if (policy == CachePolicy::kPrefetchLayer)
        predictions = l == 0 ? PreviousTokenPredictions(r, 0)  // no previous layer: nothing
                             : PreviousLayerPredictions(requests[static_cast<size_t>(l) - 1], r, E,
                                                        rep.options.prefetch_budget);
      for (size_t ci = 0; ci < C; ++ci) {
        const int capacity = rep.options.capacities[ci];
        DocSums sums = base;
        if (IsPrefetchPolicy(policy)) {
          const PrefetchCounts counts = SimulatePrefetchCache(r, predictions, E, capacity, resets);
          sums.AddPerToken(doc_of, counts.hits, &DocSums::hits);
          sums.AddPerToken(doc_of, counts.predicted_hits, &DocSums::predicted_hits);
          sums.AddPerToken(doc_of, counts.fetched, &DocSums::fetched);
          sums.AddPerToken(doc_of, counts.fetched_used, &DocSums::fetched_used);
        } else {
          sums.AddPerToken(doc_of, SimulateCache(r, E, capacity, policy, resets), &DocSums::hits);
        }
        for (int m = 0; m <= M; ++m) {
          std::vector<uint8_t> in_row(static_cast<size_t>(D));
          for (int64_t d = 0; d < D; ++d)
            in_row[static_cast<size_t>(d)] = m == M || doc_domain[d] == m;
          FillRow(rep.rows[first_row + (static_cast<size_t>(m) * P + pi) * C + ci], sums, in_row,
                  rep.expert_bytes[static_cast<size_t>(l)], o);
        }
      }
    }
  }
  return rep;
}

void ExportCacheSim(const std::filesystem::path& dir, const CacheSimReport& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) Fail(dir.string(), "cannot be created (" + ec.message() + ")");
  auto number = [](double v) {
    if (std::isnan(v)) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.10g", v);
    return std::string(buf);
  };
  auto domain = [&](int m) {
    return m < static_cast<int>(r.domains.size()) ? r.domains[static_cast<size_t>(m)]
                                                  : std::string("all");
  };
  std::ostringstream csv;
  csv << "layer,domain,policy,capacity,hit_rate,ci_low,ci_high,misses_per_token,bytes_per_token,"
         "requests,tokens,docs,predicted_hit_rate,prefetch_accuracy,accuracy_ci_low,"
         "accuracy_ci_high,prefetches_per_token,wasted_bytes_per_token\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const CacheSimRow& x : r.rows) {
    csv << x.layer << ',' << domain(x.domain) << ',' << CachePolicyName(x.policy) << ','
        << x.capacity << ',' << number(x.hit_rate) << ',' << number(x.ci_low) << ','
        << number(x.ci_high) << ',' << number(x.misses_per_token) << ','
        << number(x.bytes_per_token) << ',' << x.requests << ',' << x.tokens << ',' << x.docs << ','
        << number(x.predicted_hit_rate) << ',' << number(x.prefetch_accuracy) << ','
        << number(x.accuracy_ci_low) << ',' << number(x.accuracy_ci_high) << ','
        << number(x.prefetches_per_token) << ',' << number(x.wasted_bytes_per_token) << '\n';
    auto js = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    rows.push_back({{"layer", x.layer},
                    {"domain", domain(x.domain)},
                    {"policy", CachePolicyName(x.policy)},
                    {"capacity", x.capacity},
                    {"hit_rate", js(x.hit_rate)},
                    {"ci_low", js(x.ci_low)},
                    {"ci_high", js(x.ci_high)},
                    {"misses_per_token", js(x.misses_per_token)},
                    {"bytes_per_token", js(x.bytes_per_token)},
                    {"requests", x.requests},
                    {"tokens", x.tokens},
                    {"docs", x.docs},
                    {"predicted_hit_rate", js(x.predicted_hit_rate)},
                    {"prefetch_accuracy", js(x.prefetch_accuracy)},
                    {"accuracy_ci_low", js(x.accuracy_ci_low)},
                    {"accuracy_ci_high", js(x.accuracy_ci_high)},
                    {"prefetches_per_token", js(x.prefetches_per_token)},
                    {"wasted_bytes_per_token", js(x.wasted_bytes_per_token)}});
  }
  const nlohmann::json j = {{"format", "moescope-cache-sim"},
                            {"format_version", 2},
                            {"trace", r.trace},
                            {"num_layers", r.layers},
                            {"num_experts", r.experts},
                            {"top_k", r.top_k},
                            {"cold_start", r.options.cold_start},
                            {"prefetch_budget", r.options.prefetch_budget},
                            {"ci_level", r.options.ci_level},
                            {"min_documents", r.options.min_documents},
                            {"expert_bytes", r.expert_bytes},
                            {"rows", rows}};
  WriteFileAtomically(dir / "cache.csv", csv.str());
  WriteFileAtomically(dir / "cache.json", j.dump(1) + "\n");
}

std::string FormatCacheTable(const CacheSimReport& r) {
  const int M = static_cast<int>(r.domains.size());
  std::string out = "layer  cached";
  for (CachePolicy p : r.options.policies) {
    char name[24];
    std::snprintf(name, sizeof(name), " %15s", CachePolicyName(p));
    out += name;
  }
  out += "  (hit rate over all documents; " +
         std::string(r.options.cold_start ? "cold start per document" : "warm cache") + ")\n";
  for (int l = 0; l < r.layers; ++l)
    for (int c : r.options.capacities) {
      char line[32];
      std::snprintf(line, sizeof(line), "%5d  %6d", l, c);
      out += line;
      for (CachePolicy p : r.options.policies)
        for (const CacheSimRow& x : r.rows)
          if (x.layer == l && x.domain == M && x.capacity == c && x.policy == p) {
            std::snprintf(line, sizeof(line), " %15.3f", x.hit_rate);
            out += line;
          }
      out += "\n";
    }
  return out;
}

}  // namespace moe
