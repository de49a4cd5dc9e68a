#include "analysis/trace/trace_chunk_builder.h"

#include <algorithm>

#include "analysis/common/float16.h"
#include "core/error.h"

namespace moe {
namespace {

// Moves the first n elements of v into the result.
template <typename T>
std::vector<T> CutFront(std::vector<T>& v, size_t n) {
  std::vector<T> front(std::make_move_iterator(v.begin()),
                       std::make_move_iterator(v.begin() + static_cast<std::ptrdiff_t>(n)));
  v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
  return front;
}

}  // namespace

TraceChunkBuilder::TraceChunkBuilder(const Corpus& corpus, int layers, int kmax, int experts,
                                     ExpertStats stats, int64_t first_token_row)
    : corpus_(corpus),
      layers_(layers),
      kmax_(kmax),
      experts_(experts),
      stats_(std::move(stats)),
      next_row_(first_token_row) {}

void TraceChunkBuilder::AddToken(int64_t doc, int32_t id, int32_t position, float nll,
                                 int32_t predicted, const int16_t* topk_ids,
                                 const float* topk_weights, const float* logits,
                                 const float* shared_gate) {
  if (doc != open_doc_) {
    if (open_doc_ >= 0 && open_tokens_ > 0)
      Fail("trace", "internal error: document " + std::to_string(doc) + " started before " +
                        std::to_string(open_doc_) + " ended");
    open_doc_ = doc;
    open_tokens_ = 0;
  }
  TraceChunk& p = pending_;
  p.id.push_back(id);
  p.position.push_back(position);
  p.doc.push_back(static_cast<int32_t>(doc));
  p.nll.push_back(nll);
  p.predicted.push_back(predicted);
  const size_t routed = static_cast<size_t>(layers_) * kmax_;
  p.topk_ids.insert(p.topk_ids.end(), topk_ids, topk_ids + routed);
  p.topk_weights.insert(p.topk_weights.end(), topk_weights, topk_weights + routed);
  if (shared_gate != nullptr)
    p.shared_gate.insert(p.shared_gate.end(), shared_gate, shared_gate + layers_);
  if (logits != nullptr) {
    p.logit_token.push_back(next_row_);
    const size_t n = static_cast<size_t>(layers_) * experts_;
    for (size_t i = 0; i < n; ++i) p.router_logits.push_back(FloatToHalf(logits[i]));
  }
  ++next_row_;
  ++open_tokens_;
}

void TraceChunkBuilder::EndDocument(int64_t doc) {
  if (doc != open_doc_ || open_tokens_ == 0)
    Fail("trace", "internal error: document " + std::to_string(doc) + " ended without tokens");
  finished_docs_.push_back(doc);
  finished_tokens_.push_back(open_tokens_);
  open_doc_ = -1;
  open_tokens_ = 0;
}

TraceChunk TraceChunkBuilder::Take() {
  TraceChunk out;
  size_t n = 0;
  for (int64_t t : finished_tokens_) n += static_cast<size_t>(t);
  const size_t routed = static_cast<size_t>(layers_) * kmax_;
  const size_t logit_width = static_cast<size_t>(layers_) * experts_;
  // Logit rows belong to the chunk when their token does.
  const int64_t first_open_row = next_row_ - static_cast<int64_t>(pending_.id.size() - n);
  const size_t logit_rows = static_cast<size_t>(
      std::lower_bound(pending_.logit_token.begin(), pending_.logit_token.end(), first_open_row) -
      pending_.logit_token.begin());

  out.id = CutFront(pending_.id, n);
  out.position = CutFront(pending_.position, n);
  out.doc = CutFront(pending_.doc, n);
  out.nll = CutFront(pending_.nll, n);
  out.predicted = CutFront(pending_.predicted, n);
  out.topk_ids = CutFront(pending_.topk_ids, n * routed);
  out.topk_weights = CutFront(pending_.topk_weights, n * routed);
  if (!pending_.shared_gate.empty())
    out.shared_gate = CutFront(pending_.shared_gate, n * static_cast<size_t>(layers_));
  out.logit_token = CutFront(pending_.logit_token, logit_rows);
  out.router_logits = CutFront(pending_.router_logits, logit_rows * logit_width);
  for (size_t i = 0; i < finished_docs_.size(); ++i) {
    const CorpusDocument& d = corpus_.documents.at(static_cast<size_t>(finished_docs_[i]));
    out.doc_tokens.push_back(finished_tokens_[i]);
    out.doc_domain.push_back(d.domain);
    out.doc_source_id.push_back(d.source_id);
  }
  for (size_t t = 0; t < n; ++t) {
    const int16_t domain = corpus_.documents[static_cast<size_t>(out.doc[t])].domain;
    stats_.AddToken(domain, out.topk_ids.data() + t * routed, out.topk_weights.data() + t * routed,
                    kmax_);
  }
  out.load = stats_.load();
  out.importance = stats_.importance();
  finished_docs_.clear();
  finished_tokens_.clear();
  return out;
}

}  // namespace moe
