// The small parts of tracing, without a model: windows, float16, SHA-256, statistics, the
// routing recorder on synthetic hook events, and policy sources.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "analysis/trace/domain_load.h"
#include "analysis/common/float16.h"
#include "analysis/policy/policy_source.h"
#include "analysis/run/routing_recorder.h"
#include "analysis/common/sha256.h"
#include "analysis/run/trace_windows.h"
#include "core/config.h"
#include "core/error.h"
#include "test_paths.h"

using namespace moe;

TEST_CASE("documents are cut into windows that record every token once", "[trace]") {
  SECTION("non-overlapping") {
    const auto w = SplitDocument(3, 600, {256, 256});
    REQUIRE(w.size() == 3);
    CHECK((w[0].begin == 0 && w[0].end == 256 && w[0].record_begin == 0 && !w[0].last));
    CHECK((w[1].begin == 256 && w[1].end == 512 && w[1].record_begin == 256));
    CHECK((w[2].begin == 512 && w[2].end == 600 && w[2].record_begin == 512 && w[2].last));
    CHECK(w[2].doc == 3);
  }
  SECTION("overlapping windows give later ones context") {
    const auto w = SplitDocument(0, 300, {256, 128});
    REQUIRE(w.size() == 2);
    CHECK((w[1].begin == 128 && w[1].end == 300 && w[1].record_begin == 256 && w[1].last));
  }
  SECTION("short documents are one window") {
    const auto w = SplitDocument(0, 5, {256, 256});
    REQUIRE(w.size() == 1);
    CHECK((w[0].end == 5 && w[0].last));
  }
  SECTION("every token exactly once for many shapes") {
    for (int64_t n : {1, 2, 63, 64, 65, 200, 1000})
      for (int64_t stride : {1, 7, 32, 64}) {
        int64_t recorded = 0, next = 0;
        for (const TraceWindow& w : SplitDocument(0, n, {64, stride})) {
          CHECK(w.record_begin == next);
          CHECK(w.length() <= 64);
          recorded += w.end - w.record_begin;
          next = w.end;
        }
        CHECK(recorded == n);
      }
  }
  SECTION("rules are validated") {
    CHECK_THROWS_WITH((WindowRule{300, 300}.Validate(256)),
                      Catch::Contains("--max-window") && Catch::Contains("256"));
    CHECK_THROWS_WITH((WindowRule{128, 200}.Validate(256)), Catch::Contains("--window-stride"));
    CHECK_NOTHROW((WindowRule{128, 64}.Validate(256)));
  }
}

TEST_CASE("float16 conversion rounds like numpy", "[trace]") {
  CHECK(FloatToHalf(1.0f) == 0x3c00);
  CHECK(FloatToHalf(-2.0f) == 0xc000);
  CHECK(FloatToHalf(65504.0f) == 0x7bff);
  CHECK(FloatToHalf(65519.0f) == 0x7bff);
  CHECK(FloatToHalf(65520.0f) == 0x7c00);  // ties to even overflow to inf
  CHECK(FloatToHalf(INFINITY) == 0x7c00);
  CHECK((FloatToHalf(NAN) & 0x7c00) == 0x7c00);
  CHECK(FloatToHalf(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(FloatToHalf(std::ldexp(1.0f, -25)) == 0x0000);  // tie to even: zero
  CHECK(FloatToHalf(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(FloatToHalf(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // tie to even (down)
  CHECK(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie to even (up)
  // Every finite half survives a round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    const uint16_t back = FloatToHalf(HalfToFloat(static_cast<uint16_t>(h)));
    if (back != h) FAIL("half 0x" << std::hex << h << " came back as 0x" << back);
  }
}

TEST_CASE("SHA-256 matches the FIPS 180-4 examples", "[trace]") {
  auto hex = [](const std::string& s) {
    Sha256 sha;
    sha.Update(s);
    return sha.HexDigest();
  };
  CHECK(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 pieces;  // the same bytes fed in odd-sized pieces
  const std::string a(1000000, 'a');
  for (size_t i = 0; i < a.size(); i += 997)
    pieces.Update(a.data() + i, std::min<size_t>(997, a.size() - i));
  CHECK(pieces.HexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const auto file = TempDir("sha") / "abc.txt";
  std::ofstream(file) << "abc";
  CHECK(Sha256OfFile(file) == hex("abc"));
  CHECK_THROWS_WITH(Sha256OfFile(TempDir("sha") / "missing"), Catch::Contains("missing"));
}

TEST_CASE("expert statistics count selections per domain and in total", "[trace]") {
  ExpertStats s(2, 2, 4);               // 2 domains, 2 layers, 4 experts
  const int16_t ids[] = {0, 1, 2, -1};  // layer 0: experts 0, 1; layer 1: expert 2 and a pad
  const float w[] = {0.7f, 0.3f, 1.0f, 0.0f};
  s.AddToken(1, ids, w, 2);
  s.AddToken(0, ids, w, 2);
  s.AddToken(1, ids, w, 2);
  auto load = [&](int m, int l, int e) { return s.load()[(m * 2 + l) * 4 + e]; };
  CHECK(load(1, 0, 0) == 2);
  CHECK(load(0, 0, 1) == 1);
  CHECK(load(2, 1, 2) == 3);
  CHECK(load(2, 1, 3) == 0);
  CHECK(s.importance()[(2 * 2 + 0) * 4 + 0] == Approx(2.1));
  CHECK_THROWS_WITH(s.AddToken(2, ids, w, 2), Catch::Contains("domain 2"));
  ExpertStats twice = s;
  twice.Merge(s);
  CHECK(twice.load()[(2 * 2 + 1) * 4 + 2] == 6);
}

TEST_CASE("the routing recorder drops padding and groups rows by sequence", "[trace]") {
  // Two sequences of 3 positions, the second padded after 2 tokens.
  const int32_t sequence[] = {0, 0, 0, 1, 1, 1}, position[] = {0, 1, 2, 0, 1, 1};
  const int32_t document[] = {7, 7, 7, 9, 9, -1};
  const uint8_t real[] = {1, 1, 1, 1, 1, 0};
  TokenSpan span;
  span.count = 6;
  span.sequence = sequence;
  span.position = position;
  span.document = document;
  span.real = real;
  RoutingRecorder rec(2, 4, 2, true);
  rec.Reset();
  for (int l = 0; l < 2; ++l) {
    // Layer l selects one expert per token (k = 1 < kmax = 2): id = row + l, weight 1.
    int32_t ids[6];
    float weights[6], logits[24];
    for (int t = 0; t < 6; ++t) {
      ids[t] = (t + l) % 4;
      weights[t] = 1.0f;
      for (int e = 0; e < 4; ++e) logits[t * 4 + e] = static_cast<float>(10 * t + e + 100 * l);
    }
    HookEvent ev;
    ev.layer = l;
    ev.tokens = &span;
    ev.rows = 6;
    ev.cols = 1;
    ev.site = HookSite::kTopkIds;
    ev.ids = ids;
    rec.OnEvent(ev);
    ev.site = HookSite::kTopkWeights;
    ev.ids = nullptr;
    ev.values = weights;
    rec.OnEvent(ev);
    ev.site = HookSite::kRouterLogits;
    ev.cols = 4;
    ev.values = logits;
    rec.OnEvent(ev);
  }
  rec.CheckComplete();
  REQUIRE(rec.rows() == 5);
  CHECK(rec.SequenceBegin(0) == 0);
  CHECK(rec.SequenceBegin(1) == 3);
  CHECK(rec.SequenceBegin(2) == 5);
  CHECK(rec.document()[4] == 9);
  CHECK(rec.position()[4] == 1);
  // Row 4 is event row 4: layer 1 picked (4 + 1) % 4 = 1, padded with -1 / 0.
  CHECK(rec.topk_ids()[(4 * 2 + 1) * 2 + 0] == 1);
  CHECK(rec.topk_ids()[(4 * 2 + 1) * 2 + 1] == -1);
  CHECK(rec.topk_weights()[(4 * 2 + 1) * 2 + 1] == 0.0f);
  CHECK(rec.router_logits()[(4 * 2 + 1) * 4 + 3] == 143.0f);
  rec.Reset();
  CHECK_THROWS_WITH(rec.CheckComplete(), Catch::Contains("no routing events"));
}

TEST_CASE("policy sources: a file or flags, not both", "[trace]") {
  ModelConfig c;
  c.num_hidden_layers = 2;
  c.num_experts = 4;
  c.num_selects = 2;
  c.vocab_size = 16;
  c.score_scale_factor = {1.0f, 1.0f};
  c.size_experts = {{1, 1, 1, 1}, {1, 1, 1, 1}};
  const auto file = TempDir("policy") / "p.json";
  std::ofstream(file) << R"({"mode": "drop", "disable": [[1, 3]]})";
  PolicySource from_file{file.string(), "", "", "", ""};
  const RoutingPolicy p = MakePolicy(from_file, c);
  CHECK(p.mode == DisableMode::kDrop);
  CHECK(p.layers[1].disabled == std::vector<int32_t>{3});
  PolicySource both = from_file;
  both.disable = "0:1";
  CHECK_THROWS_WITH(MakePolicy(both, c), Catch::Contains("not both"));
  PolicySource flags{"", "0:1,1:2", "reroute", "*:1", ""};
  const RoutingPolicy q = MakePolicy(flags, c);
  CHECK(q.layers[0].top_k == 1);
  CHECK(q.layers[1].disabled == std::vector<int32_t>{2});
  std::ofstream(file) << "{not json";
  CHECK_THROWS_WITH(MakePolicy(from_file, c), Catch::Contains(file.string()));
  CHECK(MakePolicy(PolicySource{}, c).empty());
}
