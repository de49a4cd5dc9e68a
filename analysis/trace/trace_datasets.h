#pragma once
// The datasets of a trace file (docs/trace-format.md), opened once by name: what the writer
// appends to and the reader reads from.
#include <string>

#include "analysis/common/hdf5_util.h"

namespace moe {

struct TraceDatasets {
  h5::Handle id, position, doc, nll;      // /tokens/*
  h5::Handle predicted;                   // /tokens/predicted, invalid when the trace has none
  h5::Handle offset, domain, source_id;   // /docs/*
  h5::Handle domains;                     // /domains
  h5::Handle topk_ids, topk_weights;      // /routing/topk_*
  h5::Handle shared_gate;                 // /routing/shared_gate, invalid when the trace has none
  h5::Handle router_logits, logit_token;  // only when the trace records logits
  h5::Handle load, importance;            // /stats/*

  // Errors name `path` and the dataset.
  static TraceDatasets Open(hid_t file, const std::string& path, bool logits);
};

}  // namespace moe
