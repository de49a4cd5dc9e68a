#pragma once
// A trace's root attributes (docs/trace-format.md): one plain struct, with no HDF5, that the
// writer is given (TraceHeader), the reader returns (TraceReader::info) and an ablation results
// file stores the run part of (AblationHeader::run), so code that only shows them
// (moescope-studio's views) can hold them. attributes_io.h reads and writes the run part for both
// file kinds.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct TraceAttributes {
  // Set by the writer, read back by the reader.
  std::string path;  // the file read (reader only)
  int format_version = 0;
  std::string engine_version, created;
  // The run: model, checkpoint, tokenizer, policy, corpus and windows (attributes_io.h).
  std::string model_path;
  std::string model_config;       // config.json as JSON text
  std::string checkpoint_sha256;  // JSON object {"<file>": "<sha256 hex>"} of the weight files
  std::string tokenizer_sha256;   // sha256 hex of tokenizer.model, "" when there is none
  std::string routing_policy;     // the policy as JSON text (policy/policy_json.h)
  std::string windowing;          // JSON, see docs/trace-format.md
  std::string corpus;             // JSON: files, documents, tokens, skipped
  std::string corpus_sha256;      // Corpus::Fingerprint()
  // The model's family (config model_type), its router recipe in words (core/model_summary.h)
  // and which layers route ([L], 1 = MoE, 0 = dense). Files written before families existed lack
  // them; the reader then gives "llama_moe", "" and every layer MoE.
  std::string model_family = "llama_moe";
  std::string router_recipe;
  std::vector<uint8_t> moe_layers;
  int num_layers = 0, num_experts = 0;
  int top_k = 0;                          // kmax: columns of /routing/topk_*
  std::vector<float> score_scale_factor;  // [L] as executed (policy override or config)
  // What the trace records.
  bool record_logits = false;
  double logit_sample_rate = 0;
  bool complete = false;  // reader only; the writer sets it when the trace is finished
};

}  // namespace moe
