#pragma once
// Reads a moescope trace (docs/trace-format.md): header, documents, token rows, routing rows,
// sampled router logits and statistics. Only the committed prefix (/docs/offset) is visible, so
// an interrupted trace or one still being written reads as whole documents. Every failure --
// a missing file, a file that is not HDF5, a truncated or damaged trace, an unknown
// format_version -- is a moe::Error naming the file.
//
// One HDF5 handle per reader; a reader is not meant to be shared between threads.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "analysis/common/hdf5_util.h"
#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_attributes.h"
#include "analysis/trace/trace_datasets.h"

namespace moe {

struct TraceDocument {
  int64_t index = 0;
  int64_t token_begin = 0, token_end = 0;  // rows [begin, end) of the token datasets
  int16_t domain = 0;
  int64_t tokens() const { return token_end - token_begin; }
};

// Rows [begin, begin + size()) of /tokens.
struct TokenRows {
  int64_t begin = 0;
  std::vector<int32_t> id, position, doc;
  std::vector<float> nll;
  // The model's top-1 prediction at each row (-1: none); empty when the trace has no
  // /tokens/predicted (written by an older moescope).
  std::vector<int32_t> predicted;
  int64_t size() const { return static_cast<int64_t>(id.size()); }
};

// Rows [begin, begin + count) of /routing/topk_ids and /routing/topk_weights (and of
// /routing/shared_gate when the trace has it).
struct RoutingRows {
  int64_t begin = 0, count = 0;
  int layers = 0, kmax = 0;
  std::vector<int16_t> ids;        // [count, L, kmax], -1 pads
  std::vector<float> weights;      // [count, L, kmax], 0 pads
  std::vector<float> shared_gate;  // [count, L], empty when the model has no shared expert
  // The kmax selections of row `row` (relative to begin) at `layer`.
  std::span<const int16_t> Ids(int64_t row, int layer) const {
    return {ids.data() + (row * layers + layer) * kmax, static_cast<size_t>(kmax)};
  }
  std::span<const float> Weights(int64_t row, int layer) const {
    return {weights.data() + (row * layers + layer) * kmax, static_cast<size_t>(kmax)};
  }
};

// Rows [begin, begin + count) of the sampled router logits, as float32.
struct LogitRows {
  int64_t begin = 0, count = 0;
  int layers = 0, experts = 0;
  std::vector<int64_t> token;  // [count] token row of each logit row
  std::vector<float> logits;   // [count, L, E]
  std::span<const float> Logits(int64_t row, int layer) const {
    return {logits.data() + (row * layers + layer) * experts, static_cast<size_t>(experts)};
  }
};

class TraceReader {
 public:
  // swmr: open for reading while a writer is still appending (call Refresh to see more).
  // Without it, a trace whose writer was killed is still opened (in SWMR-read mode), since HDF5
  // refuses a plain open of a file left flagged as being written.
  explicit TraceReader(const std::filesystem::path& path, bool swmr = false);

  const TraceAttributes& info() const { return info_; }
  const std::vector<std::string>& domains() const { return domains_; }

  // The committed prefix.
  int64_t num_documents() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t num_tokens() const { return offsets_.back(); }
  int64_t num_logit_rows() const { return static_cast<int64_t>(logit_token_.size()); }
  // Whether the trace records the model's top-1 predictions (/tokens/predicted; optional, absent
  // from traces of older moescope versions).
  bool has_predictions() const { return ds_.predicted.valid(); }
  // Whether the trace records the shared expert's gate (/routing/shared_gate; models with one).
  bool has_shared_gate() const { return ds_.shared_gate.valid(); }
  // vocab_size of the stored model config; 0 when it names none.
  int vocab_size() const { return vocab_size_; }

  std::span<const int64_t> doc_offsets() const { return offsets_; }     // [D + 1]
  std::span<const int16_t> doc_domains() const { return doc_domain_; }  // [D]
  TraceDocument Document(int64_t d) const;
  std::vector<std::string> SourceIds(int64_t begin, int64_t count) const;

  TokenRows ReadTokens(int64_t begin, int64_t count) const;
  RoutingRows ReadRouting(int64_t begin, int64_t count) const;
  // Logit rows (not token rows); token[] says which token each belongs to.
  LogitRows ReadRouterLogits(int64_t begin, int64_t count) const;
  // Sorted token rows that have logits ([num_logit_rows]).
  std::span<const int64_t> logit_tokens() const { return logit_token_; }

  // The document of each token row in [begin, begin + count) (the /tokens/doc column alone).
  std::vector<int32_t> ReadTokenDocs(int64_t begin, int64_t count) const;

  // /stats as stored. In an incomplete trace they may run ahead of the committed prefix by the
  // chunk being written when it stopped; ComputeDomainLoad (analysis/stats/trace_load.h) counts
  // them from the committed routing rows, exactly for any trace.
  ExpertStats ReadStats() const;

  // SWMR: re-reads `complete` and the committed prefix from what the writer has flushed (a no-op
  // for a trace opened normally).
  void Refresh();

 private:
  void Open(bool swmr);
  void ReadHeader();
  void OpenDatasets();
  void ReadCommitted();
  void CheckRange(const char* what, int64_t begin, int64_t count, int64_t size) const;
  void CheckTokenDocs(int64_t begin, const std::vector<int32_t>& doc) const;
  h5::Place At(const char* object) const { return {info_.path, object}; }

  TraceAttributes info_;
  bool swmr_ = false;  // opened in SWMR-read mode: datasets may grow and must be refreshed
  h5::Handle file_;
  TraceDatasets ds_;
  std::vector<std::string> domains_;
  std::vector<int64_t> offsets_;
  std::vector<int16_t> doc_domain_;
  std::vector<int64_t> logit_token_;
  int vocab_size_ = 0;
};

}  // namespace moe
