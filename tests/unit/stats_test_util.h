#pragma once
// Hand-built traces for the statistics tests: documents with chosen tokens, routing and logits,
// written through TraceFile so they are real trace files.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/common/float16.h"
#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_file.h"

namespace stats_test {

struct HandDoc {
  std::string domain;
  std::vector<int32_t> ids;                 // [n]
  std::vector<std::vector<int16_t>> route;  // [n][L * K], descending weight, -1 pads
  std::vector<std::vector<float>> logits;   // [n][L * E] or empty
  std::vector<int32_t> predicted;           // [n] the model's top-1 prediction, or empty (-1)
};

struct HandTrace {
  int layers = 1, experts = 4, top_k = 2, vocab = 64;
  // Write /tokens/predicted; false writes the trace as moescope did before it recorded
  // predictions (no such dataset).
  bool predictions = true;
  std::vector<std::string> domains;
  std::vector<HandDoc> docs;

  // Appends a document whose every token takes `route` (one [L * K] row).
  HandDoc& Add(const std::string& domain, std::vector<int32_t> ids,
               const std::vector<int16_t>& route) {
    HandDoc d{domain, std::move(ids), {}, {}, {}};
    d.route.assign(d.ids.size(), route);
    docs.push_back(std::move(d));
    return docs.back();
  }

  int Domain(const std::string& name) {
    for (size_t i = 0; i < domains.size(); ++i)
      if (domains[i] == name) return static_cast<int>(i);
    domains.push_back(name);
    return static_cast<int>(domains.size()) - 1;
  }

  // Writes documents [first, last) (all by default) as one complete trace.
  void Write(const std::filesystem::path& path, size_t first = 0, size_t last = SIZE_MAX) {
    last = std::min(last, docs.size());
    for (const HandDoc& d : docs) Domain(d.domain);
    const bool logits = !docs.empty() && !docs[0].logits.empty();
    moe::TraceHeader h;
    h.model_path = "/nonexistent/hand-built";
    h.model_config = nlohmann::json{{"vocab_size", vocab}}.dump();
    h.checkpoint_sha256 = "{}";
    h.routing_policy = "{}";
    h.num_layers = layers;
    h.num_experts = experts;
    h.top_k = top_k;
    h.score_scale_factor.assign(static_cast<size_t>(layers), 1.0f);
    h.windowing = "{}";
    h.corpus = "{}";
    h.domains = domains;
    h.source_id_bytes = 16;
    h.record_logits = logits;
    h.logit_sample_rate = logits ? 1.0 : 0.0;
    h.record_predictions = predictions;
    moe::TraceFile file = moe::TraceFile::Create(path, h);
    moe::TraceChunk c;
    moe::ExpertStats stats(static_cast<int>(domains.size()), layers, experts);
    int64_t row = 0;
    for (size_t i = first; i < last; ++i) {
      const HandDoc& d = docs[i];
      const int16_t m = static_cast<int16_t>(Domain(d.domain));
      c.doc_tokens.push_back(static_cast<int64_t>(d.ids.size()));
      c.doc_domain.push_back(m);
      c.doc_source_id.push_back("doc" + std::to_string(i));
      for (size_t t = 0; t < d.ids.size(); ++t) {
        c.id.push_back(d.ids[t]);
        c.position.push_back(static_cast<int32_t>(t));
        c.doc.push_back(static_cast<int32_t>(c.doc_tokens.size() - 1));
        c.nll.push_back(1.0f);
        c.predicted.push_back(d.predicted.empty() ? -1 : d.predicted[t]);
        std::vector<float> w;
        for (int l = 0; l < layers; ++l) {
          int n = 0;
          for (int k = 0; k < top_k; ++k) n += d.route[t][l * top_k + k] >= 0;
          // Descending weights summing to 1: n, n-1, ..., 1 over n(n+1)/2.
          for (int k = 0; k < top_k; ++k)
            w.push_back(k < n ? static_cast<float>(n - k) / (n * (n + 1) / 2.0f) : 0.0f);
        }
        c.topk_ids.insert(c.topk_ids.end(), d.route[t].begin(), d.route[t].end());
        c.topk_weights.insert(c.topk_weights.end(), w.begin(), w.end());
        stats.AddToken(m, d.route[t].data(), w.data(), top_k);
        if (logits) {
          c.logit_token.push_back(row);
          for (float z : d.logits[t]) c.router_logits.push_back(moe::FloatToHalf(z));
        }
        ++row;
      }
    }
    c.load = stats.load();
    c.importance = stats.importance();
    file.Commit(c);
    file.MarkComplete();
    file.Close();
  }
};

}  // namespace stats_test
