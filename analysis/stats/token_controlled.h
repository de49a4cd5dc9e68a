#pragma once
// Token-controlled domain specialization (docs/stats-format.md, "Token-controlled
// specialization"). Raw specialization DS(e, D) mixes two things: a domain may use an expert
// more because routing depends on the domain, or only because the domain uses more of the token
// ids the expert takes anyway. This pass removes the second: it routes every token of a document
// as its token id is routed over the whole corpus,
//     expected_d(l, e) = Σ_{tokens t of d} N_{l, x_t, e} / N_{x_t}
// (N_x: occurrences of id x, N_{l,x,e}: those that layer l sent to e, from the first pass's
// token id × expert table), beside the observed count o_d(l, e). Per domain:
//   lift  O / E  (Σ over the domain's documents), 1 = token identity explains the domain's use;
//   a cluster-t interval over documents for the ratio (linearization, CR1, t with G - 1 d.f.);
//   a p-value for O = E: t = Σ_d (o_d - e_d) / sqrt(G/(G-1) Σ_d (δ_d - mean δ)^2), t_{G-1},
//   with documents as the units, so routing that persists within a document is not counted as
//   independent evidence.
// The expectation uses all domains, the domain itself included, which pulls the lift towards 1
// (a token id seen only in one domain can show no effect): a conservative control.
#include <cstdint>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/resampling.h"
#include "analysis/stats/token_sink.h"

namespace moe {

class TokenControlledPass : public TokenSink {
 public:
  // `first` must hold the token id × expert table (options.vocabulary and shape.vocab > 0).
  explicit TokenControlledPass(const RoutingAccumulator& first);

  void BeginDocument(int64_t global_doc, int domain) override;
  // The prediction is not used: the control is over input token ids.
  void AddToken(int32_t token_id, const int16_t* ids, const float* weights, int kmax,
                const float* logits, int32_t predicted = -1) override;
  void EndDocument() override;

  // Rows of domain_spec_lift_token and domain_spec_token_p for every domain, layer and expert.
  void AddRows(const StatsOptions& options, StatsReport& report) const;

  // The per-document sums, for reductions across processes (analysis/distributed/).
  std::vector<ClusterRatio>& mutable_sums() { return sums_; }

 private:
  const RoutingAccumulator& first_;
  int L_, E_, V_;
  std::vector<ClusterRatio> sums_;  // [M, L, E] observed over expected, summed over documents
  int domain_ = -1;
  std::vector<double> observed_, expected_;  // [L, E] of the open document
};

}  // namespace moe
