// StudioData filled from a real trace (the bundled model over the tiny test corpus) through the
// analysis API, and every view drawn over it headless.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/stats/trace_load.h"
#include "analysis/trace/trace_reader.h"
#include "core/error.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/tokenizer.h"
#include "gui/model/studio_loader.h"
#include "gui/views/coactivation_view.h"
#include "gui/views/load_view.h"
#include "gui/views/overview_view.h"
#include "gui/views/specialization_view.h"
#include "gui/views/token_map_view.h"
#include "gui_test_util.h"

using namespace moe::studio;

TEST_CASE("loader copies the trace's facts and the statistics API's results", "[gui][loader]") {
  const auto& trace = gui_test::SmallTrace();
  LoadOptions o;
  o.stats.bootstrap = 20;
  o.stats.permutations = 20;
  const LoadResult r = LoadStudioData(trace, o);
  const StudioData& d = r.data;
  const moe::TraceReader reader(trace);
  CHECK(d.trace.info.path == trace.string());
  CHECK(d.trace.info.complete);
  CHECK(d.trace.info.num_layers == reader.info().num_layers);
  CHECK(d.trace.info.num_experts == reader.info().num_experts);
  CHECK(d.trace.tokens == reader.num_tokens());
  CHECK(d.documents.size() == static_cast<size_t>(reader.num_documents()));
  CHECK(d.domains == reader.domains());
  CHECK(!d.trace.config.empty());
  // The trace's own tokenizer (the bundled model's, hash-checked) gives token text.
  REQUIRE(r.tokenizer != nullptr);
  CHECK(d.model.tokens_from.find("tokenizer.model") != std::string::npos);

  // The windowing rule, parsed, and in words in the overview.
  const nlohmann::json windowing = nlohmann::json::parse(reader.info().windowing);
  const int64_t window = windowing["max_window"], stride = windowing["stride"];
  CHECK(d.trace.windowing.known);
  CHECK(d.trace.windowing.max_window == window);
  CHECK(d.trace.windowing.stride == stride);
  CHECK(d.trace.windowing.context_length == windowing["context_length"].get<int64_t>());
  REQUIRE(stride == window);  // the tracer's default
  bool shown = false;
  for (const OverviewRow& row : OverviewRows(d))
    if (row.key == "windowing") {
      shown = true;
      CHECK(row.value == "window " + std::to_string(window) + " tokens, stride " +
                             std::to_string(stride) + " (windows do not overlap), context length " +
                             std::to_string(d.trace.windowing.context_length));
    }
  CHECK(shown);

  // load_count equals the trace's own statistics counted from its routing rows.
  const moe::ExpertStats stats = moe::ComputeDomainLoad(reader);
  const ExpertMetric* load = d.FindExpertMetric(moe::Metric::kLoadCount);
  REQUIRE(load != nullptr);
  const int M = d.num_domains(), L = d.trace.info.num_layers, E = d.trace.info.num_experts;
  REQUIRE(load->domains == M + 1);
  for (int m = 0; m <= M; ++m)
    for (int l = 0; l < L; ++l)
      for (int e = 0; e < E; ++e) {
        const size_t i = (static_cast<size_t>(m) * L + l) * E + e;
        CHECK(load->At(m, l, e) == static_cast<double>(stats.load()[i]));
      }
  int64_t tokens = 0;
  for (int64_t t : d.domain_tokens) tokens += t;
  CHECK(tokens == d.trace.tokens);
  const ExpertMetric* rel = d.FindExpertMetric(moe::Metric::kRelativeLoad);
  REQUIRE(rel != nullptr);
  CHECK(rel->baseline[0] == 1.0);
  CHECK(!std::isnan(rel->ci_low[rel->Index(M, 0, 0)]));
  CHECK(d.FindExpertMetric(moe::Metric::kDomainSpecLiftTopk) != nullptr);
  CHECK(d.FindExpertMetric(moe::Metric::kDomainSpecPermPTopk) != nullptr);
  CHECK(d.FindLayerMetric(moe::Metric::kCvLoad) != nullptr);
  // The report's Benjamini-Hochberg q-values come along; the token-controlled lift too.
  const ExpertMetric* p = d.FindExpertMetric(moe::Metric::kDomainSpecPermPTopk);
  REQUIRE(p->q.size() == p->value.size());
  for (size_t i = 0; i < p->q.size(); ++i)
    if (!std::isnan(p->value[i])) CHECK(p->q[i] >= p->value[i]);
  CHECK(d.FindExpertMetric(moe::Metric::kDomainSpecLiftToken) != nullptr);
  CHECK(d.FindExpertMetric(moe::Metric::kDomainSpecTokenP) != nullptr);

  // Pair tables: the report's counts; rates P(j | i) = count / c_i; orders are permutations.
  const PairTables& t = d.pairs;
  REQUIRE(!t.empty());
  CHECK(t.domains == M + 1);
  CHECK(t.coactivation.size() == static_cast<size_t>(M + 1) * L * E * E);
  CHECK(t.transitions.size() == static_cast<size_t>(M + 1) * (L - 1) * E * E);
  for (int l = 0; l < L; ++l)
    for (int e = 0; e < E; ++e)  // the diagonal is the load
      CHECK(t.coactivation[t.CoBlock(M, l) + static_cast<size_t>(e) * E + e] ==
            static_cast<int64_t>(load->At(M, l, e)));
  const size_t b = t.CoBlock(M, 0);
  if (t.coactivation[b] > 0)
    CHECK(t.coactivation_rate[b + 1] == Approx(static_cast<double>(t.coactivation[b + 1]) /
                                               static_cast<double>(t.coactivation[b])));
  auto is_permutation = [E](const int* order) {
    std::vector<int> v(order, order + E);
    std::sort(v.begin(), v.end());
    for (int k = 0; k < E; ++k)
      if (v[k] != k) return false;
    return true;
  };
  for (int m = 0; m <= M; ++m)
    for (int l = 0; l < L; ++l) {
      CHECK(is_permutation(t.coactivation_order.data() + t.CoOrder(m, l)));
      if (l + 1 < L) {
        CHECK(is_permutation(t.transition_row_order.data() + t.TransitionOrder(m, l)));
        CHECK(is_permutation(t.transition_col_order.data() + t.TransitionOrder(m, l)));
      }
    }

  // The first document, with decoded text.
  REQUIRE(d.document != nullptr);
  CHECK(d.document->index == 0);
  CHECK(d.document->size() == d.documents[0].tokens);
  CHECK(d.document->layers == L);
  CHECK(d.document->text.front() ==
        TokenDisplayText(r.tokenizer.get(), d.document->token_id.front()));
}

TEST_CASE("every view draws over a real trace", "[gui][loader][views]") {
  LoadOptions o;
  o.stats.bootstrap = 10;
  o.stats.permutations = 10;
  const LoadResult r = LoadStudioData(gui_test::SmallTrace(), o);
  const StudioData& d = r.data;
  gui_test::Headless ui(ImVec2(1600, 1000));
  Selection sel;
  for (auto& view : MakeAllViews()) {
    ui.Frame(*view, d, sel);
    ui.Frame(*view, d, sel);
    if (auto* load = dynamic_cast<LoadView*>(view.get())) {
      const auto cells = gui_test::QuadsIn(gui_test::SolidQuads(), load->last_heatmap().grid_min,
                                           load->last_heatmap().grid_max);
      CHECK(cells.size() ==
            static_cast<size_t>(d.trace.info.num_layers * d.trace.info.num_experts));
    }
    if (auto* spec = dynamic_cast<SpecializationView*>(view.get())) {
      const auto cells = gui_test::QuadsIn(gui_test::SolidQuads(), spec->last_heatmap().grid_min,
                                           spec->last_heatmap().grid_max);
      CHECK(cells.size() == static_cast<size_t>(d.num_domains() * d.trace.info.num_experts));
      spec->set_lift(SpecializationView::Lift::kTokenControlled);  // the token-controlled lift
      ui.Frame(*view, d, sel);
      ui.Frame(*view, d, sel);
      CHECK(gui_test::QuadsIn(gui_test::SolidQuads(), spec->last_heatmap().grid_min,
                              spec->last_heatmap().grid_max)
                .size() == static_cast<size_t>(d.num_domains() * d.trace.info.num_experts));
    }
    if (auto* pairs = dynamic_cast<CoactivationView*>(view.get())) {
      const auto cells = gui_test::QuadsIn(gui_test::SolidQuads(), pairs->last_heatmap().grid_min,
                                           pairs->last_heatmap().grid_max);
      CHECK(cells.size() ==
            static_cast<size_t>(d.trace.info.num_experts * d.trace.info.num_experts));
    }
    if (auto* map = dynamic_cast<TokenMapView*>(view.get())) {
      CHECK(map->last_frame().drawn_tokens == d.document->size());
      // Each box has the colour of the token's first expert at layer 0.
      const auto quads = gui_test::SolidQuads();
      for (int64_t t = 0; t < d.document->size(); ++t) {
        ImVec2 a, b;
        REQUIRE(map->TokenRect(t, &a, &b));
        bool found = false;
        for (const auto& q : gui_test::QuadsIn(quads, a, b))
          found |= q.col == ExpertColor(d.document->Top1(t, 0), d.trace.info.num_experts);
        CHECK(found);
      }
    }
  }
}

TEST_CASE("token display text", "[gui][loader]") {
  const moe::SentencePieceTokenizer tok(gui_test::TinyModel() / "tokenizer.model");
  CHECK(TokenDisplayText(nullptr, 42) == "#42");
  CHECK(TokenDisplayText(&tok, 100000) == "#100000");
  // Byte pieces: <0x0A> is a newline.
  for (int id = 0; id < tok.vocab_size(); ++id)
    if (tok.Piece(id) == "<0x0A>") CHECK(TokenDisplayText(&tok, id) == "\n");
  // U+2581 becomes a space.
  for (int id = 0; id < tok.vocab_size(); ++id) {
    const std::string p = tok.Piece(id);
    if (p.rfind("\xe2\x96\x81", 0) == 0 && p.size() > 3) {
      CHECK(TokenDisplayText(&tok, id) == std::string(" ").append(p.substr(3)));
      break;
    }
  }
  // Byte-level BPE (tokenizer.json): "Ġ" and "Ċ" are a space and a newline, and the bytes of a
  // character split over several tokens (CJK, emoji) show as the character on the first one.
  const auto bpe =
      moe::OpenTokenizerFile(gui_test::SourceDir() / "tests/fixtures/tokenizers/qwen2_bpe.json");
  const std::string text = "The caf\xc3\xa9 \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89\n  x";
  const std::vector<int32_t> ids = bpe->Encode(text, false);
  const std::vector<std::string> shown = DocumentText(bpe.get(), ids);
  std::string joined;
  for (const std::string& piece : shown) {
    CHECK(piece.find("\xc4\xa0") == std::string::npos);  // no "Ġ"
    joined += piece;
  }
  CHECK(joined == text);
  CHECK(TokenDisplayText(bpe.get(), ids.front()) == "The");
}

TEST_CASE("bad traces are errors that name the file, never crashes", "[gui][loader][bad-input]") {
  gui_test::TempDir dir("bad");
  const auto text = dir.path() / "not-a-trace.h5";
  std::ofstream(text) << "this is not HDF5\n";
  try {
    LoadStudioData(text, LoadOptions{});
    FAIL("no error");
  } catch (const moe::Error& e) {
    CHECK(std::string(e.what()).find(text.string()) != std::string::npos);
  }
  CHECK_THROWS_AS(LoadStudioData(dir.path() / "missing.h5", LoadOptions{}), moe::Error);
  // A truncated copy of a real trace.
  const auto cut = dir.path() / "truncated.h5";
  std::filesystem::copy_file(gui_test::SmallTrace(), cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 3);
  CHECK_THROWS_AS(LoadStudioData(cut, LoadOptions{}), moe::Error);
  // Out-of-range document.
  CHECK_THROWS_AS(LoadDocument(gui_test::SmallTrace(), 1000, nullptr), moe::Error);
}

TEST_CASE("loading can be cancelled", "[gui][loader]") {
  std::atomic<bool> cancel{true};
  LoadOptions o;
  o.cancel = &cancel;
  CHECK_THROWS_AS(LoadStudioData(gui_test::SmallTrace(), o), Cancelled);
}
