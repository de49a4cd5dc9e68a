#pragma once
// Runs windows of documents through the model in padded batches and returns, per window, the
// rows of its recorded tokens: routing (through a RoutingRecorder hook), next-token NLL, and
// optionally router logits. Windows of a group are sorted by length before batching, so windows
// of similar length share a batch and little compute is spent on padding; results come back in
// the order the windows were given.
#include <cstdint>
#include <span>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/run/routing_recorder.h"
#include "analysis/run/trace_windows.h"
#include "core/moe_model.h"
#include "core/routing_policy.h"

namespace moe {

// Rows of the recorded tokens [record_begin, end) of one window.
struct WindowResult {
  std::vector<int32_t> position;    // [n]
  std::vector<float> nll;           // [n], NaN where the document has no next token
  std::vector<int32_t> predicted;   // [n] argmax of the LM logits, -1 where nll is NaN
  std::vector<int16_t> topk_ids;    // [n, L, kmax]
  std::vector<float> topk_weights;  // [n, L, kmax]
  std::vector<float> logits;        // [n, L, E], only when recording logits
  std::vector<float> shared_gate;   // [n, L], only for models with a shared expert
};

// The windows `members` as one right-padded batch; positions restart at 0 in every window
// (cumsum(mask) - 1), padding gets position 1 and document -1 as in Batch::FromRows. Shared
// with the ablation runner. The model sees document w.doc + document_base (a shard of a corpus
// passes its first document's index in the whole corpus, so per-document random draws and
// forced routes match a single-process run).
Batch MakeWindowBatch(std::span<const TraceWindow> windows, std::span<const size_t> members,
                      const Corpus& corpus, int32_t pad_id, int64_t document_base = 0);

// Corpus runs sort windows by length within groups of this many batches: large enough for
// similar lengths to meet, small enough to keep a group's result rows in memory.
constexpr size_t kBatchesPerWindowGroup = 8;

// The windows of documents first_doc.. of the corpus, in document order.
std::vector<TraceWindow> PlanWindows(const Corpus& corpus, int64_t first_doc,
                                     const WindowRule& rule);

// Window indices, longest first (stable): consecutive runs of batch_size form the batches.
std::vector<size_t> LongestFirst(std::span<const TraceWindow> windows);

class WindowRunner {
 public:
  // Registers its recorder on the model's hooks for its lifetime. `policy` may be null.
  WindowRunner(const MoeModel& model, const RoutingPolicy* policy, int kmax, bool record_logits,
               int batch_size);

  std::vector<WindowResult> Run(std::span<const TraceWindow> windows, const Corpus& corpus);
  // See MakeWindowBatch: the index in the whole corpus of `corpus`'s document 0.
  void set_document_base(int64_t base) { document_base_ = base; }

 private:
  void RunBatch(std::span<const TraceWindow> windows, std::span<const size_t> members,
                const Corpus& corpus, std::vector<WindowResult>& results);

  const MoeModel& model_;
  const RoutingPolicy* policy_;
  int batch_size_;
  bool record_logits_;
  int64_t document_base_ = 0;
  RoutingRecorder recorder_;
  HookGuard guard_;
};

}  // namespace moe
