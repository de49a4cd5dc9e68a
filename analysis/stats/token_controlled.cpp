#include "analysis/stats/token_controlled.h"

#include <cmath>
#include <limits>
#include <tuple>

#include "analysis/stats/resampling.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kWhere = "token-controlled specialization";

}  // namespace

TokenControlledPass::TokenControlledPass(const RoutingAccumulator& first)
    : first_(first), L_(first.shape().layers), E_(first.shape().experts), V_(first.shape().vocab) {
  if (first.vocab_input().empty() || V_ <= 0)
    Fail(kWhere, "needs the token id x expert table of the first pass");
  const size_t le = static_cast<size_t>(L_) * E_;
  sums_.assign(static_cast<size_t>(first.shape().domains) * le, ClusterRatio{});
  observed_.assign(le, 0.0);
  expected_.assign(le, 0.0);
}

void TokenControlledPass::BeginDocument(int64_t, int domain) {
  if (domain < 0 || domain >= first_.shape().domains)
    Fail(kWhere, "domain " + std::to_string(domain) + " is out of range");
  domain_ = domain;
  std::fill(observed_.begin(), observed_.end(), 0.0);
  std::fill(expected_.begin(), expected_.end(), 0.0);
}

void TokenControlledPass::AddToken(int32_t token_id, const int16_t* ids, const float* weights,
                                   int kmax, const float*, int32_t) {
  if (domain_ < 0) Fail(kWhere, "a token arrived outside a document");
  if (token_id < 0 || token_id >= V_)
    Fail(kWhere, "token id " + std::to_string(token_id) + " is outside the vocabulary");
  const double occurrences = static_cast<double>(first_.input_occurrences()[token_id]);
  if (!(occurrences > 0)) Fail(kWhere, "the second pass met a token the first pass did not");
  for (int l = 0; l < L_; ++l) {
    // Observed: the executed set, as the first pass counted it (weight > 0).
    for (int j = 0; j < kmax; ++j) {
      const int e = ids[l * kmax + j];
      if (e >= 0 && e < E_ && weights[l * kmax + j] > 0)
        observed_[static_cast<size_t>(l) * E_ + e] += 1;
    }
    const uint32_t* routed =
        first_.vocab_input().data() + (static_cast<size_t>(l) * V_ + token_id) * E_;
    for (int e = 0; e < E_; ++e)
      expected_[static_cast<size_t>(l) * E_ + e] += routed[e] / occurrences;
  }
}

void TokenControlledPass::EndDocument() {
  if (domain_ < 0) Fail(kWhere, "no document is open");
  ClusterRatio* cells = sums_.data() + static_cast<size_t>(domain_) * L_ * E_;
  for (size_t i = 0; i < observed_.size(); ++i) cells[i].Add(observed_[i], expected_[i]);
  domain_ = -1;
}

void TokenControlledPass::AddRows(const StatsOptions& options, StatsReport& report) const {
  const int M = first_.shape().domains;
  for (int m = 0; m < M; ++m) {
    const double tokens = first_.Slice(m)[SliceLayout::kTokens];
    for (int l = 0; l < L_; ++l)
      for (int e = 0; e < E_; ++e) {
        const ClusterRatio& c = sums_[(static_cast<size_t>(m) * L_ + l) * E_ + e];
        StatsRow lift{l, e, m, Metric::kDomainSpecLiftToken, c.Ratio(), kNan, kNan, 1.0, tokens};
        StatsRow test{l, e, m, Metric::kDomainSpecTokenP, kNan, kNan, kNan, kNan, tokens};
        lift.docs = test.docs = c.groups;  // documents whose tokens could reach e at all
        if (c.groups >= options.min_documents) {
          std::tie(lift.ci_low, lift.ci_high) = c.Interval(options.ci_level);
          test.value = c.DifferencePValue();
        }
        report.rows.push_back(lift);
        report.rows.push_back(test);
      }
  }
}

}  // namespace moe
