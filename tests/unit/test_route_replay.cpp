// Route import, replay and audit (analysis/replay): a replay of the engine's own routes agrees
// fully and scores the same NLL bit for bit; a route changed by hand shows up as exactly one
// disagreement; the fp32 vs bf16 flip rate equals a count made by hand; bad route files are
// one-line errors naming the file and field.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "analysis/replay/route_audit.h"
#include "analysis/replay/route_import.h"
#include "analysis/run/window_runner.h"
#include "core/activation_precision.h"
#include "core/error.h"
#include "core/int_array.h"
#include "core/model_loader.h"
#include "core/safetensors_file.h"
#include "test_paths.h"
#include "trace_test_util.h"

using namespace moe;
using Catch::Matchers::Contains;

namespace {

// Two domains, four documents of token ids (tiny_moe: vocabulary 512, context 256).
Corpus SmallCorpus() {
  Corpus c;
  c.domains = {"alpha", "beta"};
  for (int d = 0; d < 4; ++d) {
    CorpusDocument doc;
    doc.source_id = "doc" + std::to_string(d);
    doc.domain = static_cast<int16_t>(d % 2);
    doc.ids.push_back(1);
    for (int i = 0; i < 20 + 7 * d; ++i) doc.ids.push_back((37 * i + 11 * d + 5) % 500 + 3);
    c.documents.push_back(doc);
  }
  return c;
}

struct Fixture {
  LoadedModel model = LoadModel(FixtureDir() / "tiny_moe");
  Corpus corpus = SmallCorpus();
  AuditOptions options{.batch_size = 3, .bootstrap = 50, .seed = 7};
  const ModelConfig& config() const { return model.config(); }
};

// A .npy file of little-endian int64 (descr '<i8') or `descr` with raw bytes.
void WriteNpy(const std::filesystem::path& path, const Shape& shape,
              const std::vector<int64_t>& values, const std::string& descr = "<i8") {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(int64_t)));
}

// The table's rows at the MoE layers as [tokens, layers, k] int64, and the corpus's token ids.
std::vector<int64_t> Flat(const RouteTable& t) {
  return std::vector<int64_t>(t.ids.begin(), t.ids.end());
}
std::vector<int64_t> TokenIds(const Corpus& corpus) {
  std::vector<int64_t> ids;
  for (const CorpusDocument& d : corpus.documents)
    ids.insert(ids.end(), d.ids.begin(), d.ids.end());
  return ids;
}

}  // namespace

TEST_CASE("replaying the engine's own routes agrees fully and gives the same NLL bit for bit",
          "[replay]") {
  Fixture f;
  const RouteTable own = RecordOwnRoutes(*f.model.model, f.corpus, f.options);
  REQUIRE(own.rows() == f.corpus.tokens());
  const std::filesystem::path dir = TempDir("replay_own");
  WriteRoutes(dir / "own.safetensors", own, f.corpus, f.config());
  const RouteTable back = ImportRoutes({dir / "own.safetensors", {}}, f.corpus, f.config());
  CHECK(back.ids == own.ids);
  CHECK(back.doc_offset == own.doc_offset);

  const RouteAudit a = AuditImportedRoutes(*f.model.model, f.corpus, back, f.options);
  REQUIRE(a.layers.size() == 2);
  for (const LayerAgreement& l : a.layers) {
    CHECK(l.tokens == f.corpus.tokens());
    CHECK(l.set_agreement.value == 1.0);
    CHECK(l.top1_agreement.value == 1.0);
  }
  REQUIRE(a.nll.size() == 3);
  for (const AblationDomainResult& d : a.nll) {
    CHECK(d.tokens > 0);
    CHECK(d.delta_nll.value == 0.0);
    CHECK(d.base_nll == d.policy_nll);  // sums of the same float NLLs in the same order
    CHECK(d.agreement.value == 1.0);
  }
  // The same routes from .npy files: [tokens, MoE layers, k] and the token ids.
  WriteNpy(dir / "routes.npy", {own.rows(), 2, own.k}, Flat(own));
  WriteNpy(dir / "ids.npy", {f.corpus.tokens()}, TokenIds(f.corpus));
  CHECK(ImportRoutes({dir / "routes.npy", dir / "ids.npy"}, f.corpus, f.config()).ids == own.ids);
}

TEST_CASE("a route changed by hand is one disagreement at its layer and changes the NLL",
          "[replay]") {
  Fixture f;
  RouteTable t = RecordOwnRoutes(*f.model.model, f.corpus, f.options);
  // Document 2, position 5, layer 1: replace the first expert by one the token did not take.
  const int64_t row = t.doc_offset[2] + 5;
  int32_t* ids = t.ids.data() + (row * t.layers + 1) * t.k;
  int32_t other = 0;
  while (std::find(ids, ids + t.k, other) != ids + t.k) ++other;
  ids[0] = other;
  const RouteAudit a = AuditImportedRoutes(*f.model.model, f.corpus, t, f.options);
  const double n = static_cast<double>(f.corpus.tokens());
  CHECK(a.layers[0].set_agreement.value == 1.0);
  CHECK(a.layers[1].set_agreement.value == Approx((n - 1) / n).epsilon(1e-12));
  CHECK(a.layers[1].top1_agreement.value == Approx((n - 1) / n).epsilon(1e-12));
  // Documents 0, 1 and 3 are untouched; document 2 (domain alpha) changes from position 5 on.
  CHECK(a.nll[1].delta_nll.value == 0.0);  // beta: documents 1 and 3
  CHECK(a.nll[0].delta_nll.value != 0.0);
}

TEST_CASE("the fp32 vs bf16 flip rate equals a count of differing expert sets made by hand",
          "[replay][precision]") {
  Fixture f;
  const RouteAudit a = AuditPrecision(*f.model.model, f.corpus, f.options);
  std::vector<TraceWindow> windows;
  for (size_t d = 0; d < f.corpus.documents.size(); ++d) {
    const int64_t n = static_cast<int64_t>(f.corpus.documents[d].ids.size());
    windows.push_back({static_cast<int64_t>(d), 0, n, 0, true});
  }
  auto run = [&](ActivationPrecision p) {
    const ScopedActivationPrecision scoped(p);
    WindowRunner runner(*f.model.model, nullptr, f.config().num_selects, false, 2);
    return runner.Run(windows, f.corpus);
  };
  const std::vector<WindowResult> f32 = run(ActivationPrecision::kF32),
                                  bf16 = run(ActivationPrecision::kBF16);
  const int L = f.config().num_hidden_layers, k = f.config().num_selects;
  for (int l = 0; l < L; ++l) {
    int64_t same = 0, tokens = 0;
    for (size_t d = 0; d < windows.size(); ++d)
      for (size_t t = 0; t < f32[d].position.size(); ++t, ++tokens) {
        std::vector<int16_t> x(f32[d].topk_ids.begin() + (t * L + l) * k,
                               f32[d].topk_ids.begin() + (t * L + l + 1) * k);
        std::vector<int16_t> y(bf16[d].topk_ids.begin() + (t * L + l) * k,
                               bf16[d].topk_ids.begin() + (t * L + l + 1) * k);
        std::sort(x.begin(), x.end());
        std::sort(y.begin(), y.end());
        same += x == y;
      }
    INFO("layer " << l);
    CHECK(a.layers[static_cast<size_t>(l)].tokens == tokens);
    CHECK(a.layers[static_cast<size_t>(l)].set_agreement.value ==
          Approx(static_cast<double>(same) / tokens).epsilon(1e-12));
    CHECK(a.layers[static_cast<size_t>(l)].set_agreement.ci_low <=
          a.layers[static_cast<size_t>(l)].set_agreement.value);
  }
}

TEST_CASE("bad route files are errors naming the file and field", "[replay][bad-input]") {
  Fixture f;
  const RouteTable own = RecordOwnRoutes(*f.model.model, f.corpus, f.options);
  const std::filesystem::path dir = TempDir("replay_bad");
  const std::vector<int64_t> ids = TokenIds(f.corpus);
  WriteNpy(dir / "ids.npy", {f.corpus.tokens()}, ids);
  auto import_npy = [&](const Shape& shape, const std::vector<int64_t>& v,
                        const std::filesystem::path& id_file) {
    WriteNpy(dir / "r.npy", shape, v);
    return ImportRoutes({dir / "r.npy", id_file}, f.corpus, f.config());
  };
  const Shape shape = {own.rows(), 2, own.k};
  const std::string routes = (dir / "r.npy").string();
  // Wrong shape: 2-D, a row missing, another layer count, k beyond E.
  CHECK_THROWS_WITH(import_npy({own.rows() * 2, own.k}, Flat(own), dir / "ids.npy"),
                    Contains(routes) && Contains("expected [tokens, layers, k]"));
  const std::vector<int64_t> all = Flat(own);
  const std::vector<int64_t> fewer(all.begin(), all.end() - 2 * own.k);
  CHECK_THROWS_WITH(import_npy({own.rows() - 1, 2, own.k}, fewer, dir / "ids.npy"),
                    Contains(routes) && Contains("token rows; the corpus has"));
  CHECK_THROWS_WITH(import_npy({own.rows(), 1, 2 * own.k}, Flat(own), dir / "ids.npy"),
                    Contains(routes) && Contains("has 1 layers"));
  // Routes for other tokens.
  std::vector<int64_t> other = ids;
  other[30] += 1;
  WriteNpy(dir / "other.npy", {f.corpus.tokens()}, other);
  CHECK_THROWS_WITH(
      import_npy(shape, Flat(own), dir / "other.npy"),
      Contains((dir / "other.npy").string()) && Contains("[30]") && Contains("other tokens"));
  // Expert out of range; an expert twice in a row.
  std::vector<int64_t> bad = Flat(own);
  bad[7] = 8;
  CHECK_THROWS_WITH(import_npy(shape, bad, dir / "ids.npy"),
                    Contains(routes) && Contains("= 8 is out of range (0..7)"));
  bad = Flat(own);
  bad[5 * 2 * own.k + 1] = bad[5 * 2 * own.k];
  CHECK_THROWS_WITH(import_npy(shape, bad, dir / "ids.npy"),
                    Contains(routes) && Contains("[5, 0]") && Contains("twice"));
  // A .npy without token ids; a float array.
  CHECK_THROWS_WITH(import_npy(shape, Flat(own), {}), Contains(routes) && Contains("--token-ids"));
  WriteNpy(dir / "r.npy", shape, Flat(own), "<f8");
  CHECK_THROWS_WITH(ImportRoutes({dir / "r.npy", dir / "ids.npy"}, f.corpus, f.config()),
                    Contains(routes) && Contains("<f8"));
  // A .safetensors file without its routed_experts tensor.
  WriteSafetensors(
      (dir / "empty.safetensors").string(),
      std::vector<OwnedTensor>{MakeI32Tensor("token_ids", {1}, std::vector<int32_t>{1}.data())});
  CHECK_THROWS_WITH(ImportRoutes({dir / "empty.safetensors", {}}, f.corpus, f.config()),
                    Contains("empty.safetensors") && Contains("routed_experts"));
}

TEST_CASE("moescope replay: a bad route file is one line naming it, exit code 1",
          "[replay][bad-input][cli]") {
  const std::filesystem::path dir = TempDir("replay_cli");
  {
    std::ofstream corpus(dir / "c.jsonl");
    corpus << R"({"text": "a short document about routing", "domain": "x"})"
           << "\n";
  }
  WriteNpy(dir / "r.npy", {3, 2}, {0, 1, 2, 3, 4, 5});
  const std::string model = (FixtureDir() / "tiny_moe").string();
  const trace_test::CommandResult r =
      trace_test::RunCommand(trace_test::Cli() + " replay --model " + trace_test::Quote(model) +
                             " --corpus " + trace_test::Quote((dir / "c.jsonl").string()) +
                             " --routes " + trace_test::Quote((dir / "r.npy").string()) +
                             " --token-ids " + trace_test::Quote((dir / "r.npy").string()));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Contains("r.npy") && Contains("[tokens, layers, k]"));
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}
