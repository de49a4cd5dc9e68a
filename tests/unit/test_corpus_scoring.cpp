// Batched corpus scoring (moescope score) gives what a trace records and what scoring each
// document alone gives.
#include <catch2/catch.hpp>
#include <cmath>

#include "analysis/run/corpus_scoring.h"
#include "analysis/trace/trace_reader.h"
#include "core/heads.h"
#include "core/vocab_math.h"
#include "trace_test_util.h"

using namespace moe;

TEST_CASE("batched corpus scores equal the trace's NLL and single-document scoring",
          "[score][model]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const Corpus corpus =
      ReadCorpus({trace_test::TinyCorpus()}, m.tokenizer.get(), m.config().vocab_size, {});
  const int64_t ctx = m.config().context_length();
  const CorpusScore s =
      ScoreCorpus(*m.model, corpus, {.windows = {ctx, ctx}, .batch_size = 3, .token_nll = true});
  REQUIRE(s.documents.size() == corpus.documents.size());
  CHECK(s.tokens == corpus.tokens());

  const auto out = TempDir("corpus_scoring") / "tiny.h5";
  RunTrace(m, RoutingPolicy{}, trace_test::TinyOptions(out));
  const TraceReader r(out);
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    INFO("document " << d);
    const TraceDocument doc = r.Document(static_cast<int64_t>(d));
    const TokenRows rows = r.ReadTokens(doc.token_begin, doc.tokens());
    double traced = 0;
    int64_t predicted = 0;
    for (float x : rows.nll)
      if (!std::isnan(x)) traced += x, ++predicted;
    CHECK(s.documents[d].predicted == predicted);
    CHECK(s.documents[d].total_nll == Approx(traced).epsilon(1e-5));
    // A document that fits one window scores as it does alone (no padding, no batch).
    const std::vector<int32_t>& ids = corpus.documents[d].ids;
    if (static_cast<int64_t>(ids.size()) <= ctx) {
      const Batch batch = Batch::Single(ids);
      const std::vector<float> hidden = m.model->Forward(batch);
      const std::vector<float> logits = LmLogits(*m.model, hidden.data(), batch.tokens());
      const int64_t V = m.config().vocab_size;
      double alone = 0;
      REQUIRE(s.documents[d].token_nll.size() == ids.size() - 1);
      for (size_t t = 0; t + 1 < ids.size(); ++t) {
        const double nll = -LogProbability(logits.data() + t * V, V, ids[t + 1]);
        CHECK(s.documents[d].token_nll[t] == Approx(nll).margin(1e-4).epsilon(1e-4));
        alone += nll;
      }
      CHECK(s.documents[d].predicted == static_cast<int64_t>(ids.size()) - 1);
      CHECK(s.documents[d].total_nll == Approx(alone).epsilon(1e-4));
    }
  }
}
