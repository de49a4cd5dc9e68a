#pragma once
// A trace's root attributes (docs/trace-format.md) as TraceReader reads them. Plain data with no
// HDF5, so code that only shows them (moescope-studio's views) can hold them.
#include <string>
#include <vector>

namespace moe {

struct TraceInfo {
  std::string path;
  int format_version = 0;
  std::string engine_version, created, model_path;
  std::string model_config;       // config.json text
  std::string checkpoint_sha256;  // JSON object {file: sha256}
  std::string tokenizer_sha256;
  std::string routing_policy;  // JSON
  std::string windowing;       // JSON
  std::string corpus;          // JSON
  std::string corpus_sha256;
  int num_layers = 0, num_experts = 0, top_k = 0;
  std::vector<float> score_scale_factor;  // [L]
  bool record_logits = false;
  double logit_sample_rate = 0;
  bool complete = false;
};

}  // namespace moe
