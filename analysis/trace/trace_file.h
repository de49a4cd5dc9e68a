#pragma once
// The HDF5 side of writing a trace (docs/trace-format.md): creating the file, appending whole
// documents in crash-safe order, reopening an interrupted trace. Single-threaded; TraceWriter
// puts a queue and a thread in front of it.
//
// Commit order (what makes kill -9 safe): every token-axis dataset, /docs/domain,
// /docs/source_id and /stats are written and flushed first; /docs/offset is extended and flushed
// last. /docs/offset is therefore the committed prefix: D = len(offset) - 1 documents and
// N = offset[D] tokens. Rows past it are debris of an interrupted commit, cut off on resume.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/common/hdf5_util.h"
#include "analysis/common/writer_lock.h"
#include "analysis/trace/trace_attributes.h"
#include "analysis/trace/trace_datasets.h"

namespace moe {

// What a trace records about its run, written once as root attributes, and the shape of its
// document tables.
struct TraceHeader : TraceAttributes {
  std::vector<std::string> domains;  // [M]
  size_t source_id_bytes = 1;        // width of /docs/source_id strings
  // Create /tokens/predicted (the model's top-1 next-token prediction). Off only to write a
  // trace as moescope wrote them before the dataset existed (tests of old traces).
  bool record_predictions = true;
  // Create /routing/shared_gate (models with a shared expert).
  bool record_shared_gate = false;
};

// Whole documents continuing a trace. Token arrays are parallel, [n] rows; routing rows
// [n, L, K]; logit rows [r, L, E] with logit_token giving each one's absolute token row.
struct TraceChunk {
  std::vector<int64_t> doc_tokens;         // [d] tokens of each new document, in order
  std::vector<int16_t> doc_domain;         // [d]
  std::vector<std::string> doc_source_id;  // [d]
  std::vector<int32_t> id, position, doc;  // [n]
  std::vector<float> nll;                  // [n]
  // [n] argmax of the LM logits at each token, -1 where there is none; may be left empty (all
  // -1). Ignored when the trace has no /tokens/predicted (an older trace being resumed).
  std::vector<int32_t> predicted;
  std::vector<int16_t> topk_ids;    // [n, L, K]
  std::vector<float> topk_weights;  // [n, L, K]
  // [n, L] the weight each layer's shared expert was added with. Ignored when the trace has no
  // /routing/shared_gate (a trace begun before moescope recorded it, being resumed).
  std::vector<float> shared_gate;
  std::vector<int64_t> logit_token;     // [r]
  std::vector<uint16_t> router_logits;  // [r, L, E] float16 bits
  // /stats after this chunk (everything committed so far): [M+1, L, E]
  std::vector<int64_t> load;
  std::vector<double> importance;

  int64_t tokens() const { return static_cast<int64_t>(id.size()); }
};

class TraceFile {
 public:
  // Both take the WriterLock on `path` first, so a second writer fails before touching the file.
  // Creates (or truncates) `path`, writes the header with complete = 0, creates every dataset,
  // then switches to SWMR writing so readers can follow.
  static TraceFile Create(const std::filesystem::path& path, const TraceHeader& header);
  // Reopens an interrupted trace for writing (clearing the flags a killed SWMR writer leaves),
  // cuts every dataset back to the committed prefix, then switches to SWMR writing.
  static TraceFile Reopen(const std::filesystem::path& path);

  TraceFile(TraceFile&&) noexcept = default;
  TraceFile& operator=(TraceFile&&) noexcept = default;

  // Reserves the disk space it needs (so a full disk fails it before anything is written), then
  // appends the chunk and flushes it, /docs/offset last.
  void Commit(const TraceChunk& chunk);
  // Sets `complete` to 1 and flushes.
  void MarkComplete();
  void Close();

  int64_t documents() const { return documents_; }
  int64_t tokens() const { return tokens_; }

 private:
  TraceFile() = default;
  void WriteNewFile(const TraceHeader& header);
  void OpenDatasets();
  void CheckChunk(const TraceChunk& chunk) const;
  uint64_t CommitBytes(const TraceChunk& chunk) const;
  h5::Place At(const char* object) const { return {path_, object}; }

  std::string path_;
  WriterLock lock_;  // declared before file_: released after the file is closed
  h5::Handle file_;
  TraceDatasets ds_;
  h5::Handle source_id_type_, float16_type_;
  int layers_ = 0, kmax_ = 0, experts_ = 0, domains_ = 0;
  size_t source_id_bytes_ = 1;
  bool logits_ = false;
  bool predictions_ = false;  // the file has /tokens/predicted
  bool shared_gate_ = false;  // the file has /routing/shared_gate
  int64_t documents_ = 0, tokens_ = 0, logit_rows_ = 0;
};

}  // namespace moe
