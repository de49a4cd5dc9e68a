#pragma once
// Compares two traces row by row through TraceReader (for the resume and crash tests).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "analysis/trace/trace_reader.h"

namespace trace_test {

// `predictions`: compare /tokens/predicted too (both must have it or both lack it); false when
// `got` is an older trace (without the dataset) resumed on purpose.
inline void CheckSameTrace(const std::filesystem::path& want_path,
                           const std::filesystem::path& got_path, bool predictions = true) {
  const moe::TraceReader want(want_path), got(got_path);
  INFO("comparing " << got_path.string() << " with " << want_path.string());
  CHECK(got.info().complete);
  REQUIRE(got.num_documents() == want.num_documents());
  REQUIRE(got.num_tokens() == want.num_tokens());
  CHECK(std::equal(got.doc_offsets().begin(), got.doc_offsets().end(), want.doc_offsets().begin()));
  CHECK(std::equal(got.doc_domains().begin(), got.doc_domains().end(), want.doc_domains().begin()));
  CHECK(got.SourceIds(0, got.num_documents()) == want.SourceIds(0, want.num_documents()));
  const int64_t n = want.num_tokens();
  const moe::TokenRows a = want.ReadTokens(0, n), b = got.ReadTokens(0, n);
  CHECK(b.id == a.id);
  CHECK(b.position == a.position);
  CHECK(b.doc == a.doc);
  if (predictions) {
    CHECK(got.has_predictions() == want.has_predictions());
    CHECK(b.predicted == a.predicted);  // argmax of the same logits: exact
  }
  for (int64_t t = 0; t < n; ++t)
    if (!(std::isnan(a.nll[t]) && std::isnan(b.nll[t])) && a.nll[t] != b.nll[t]) {
      CHECK(b.nll[t] == Approx(a.nll[t]).epsilon(1e-5));
    }
  const moe::RoutingRows ra = want.ReadRouting(0, n), rb = got.ReadRouting(0, n);
  CHECK(rb.ids == ra.ids);
  for (size_t i = 0; i < ra.weights.size(); ++i)
    if (ra.weights[i] != rb.weights[i]) CHECK(rb.weights[i] == Approx(ra.weights[i]).margin(1e-6));
  CHECK(std::vector<int64_t>(got.logit_tokens().begin(), got.logit_tokens().end()) ==
        std::vector<int64_t>(want.logit_tokens().begin(), want.logit_tokens().end()));
  const moe::ExpertStats sa = want.ReadStats(), sb = got.ReadStats();
  CHECK(sb.load() == sa.load());
  for (size_t i = 0; i < sa.importance().size(); ++i)
    CHECK(sb.importance()[i] == Approx(sa.importance()[i]).epsilon(1e-6));
}

}  // namespace trace_test
