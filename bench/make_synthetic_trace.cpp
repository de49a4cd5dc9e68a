// Writes a synthetic trace of the bundled model's shape (L = 2, E = 8, K = 2, V = 512, 5
// domains, documents of 100..899 tokens) for the bounded-memory check of `moescope stats`:
//   moescope_make_synthetic_trace big.h5 50000000
//   /usr/bin/time -v moescope stats big.h5 -o big_stats     (max resident set, wall time)
// With SHARDS, writes SHARDS traces OUT.shard-NNNN.h5 of TOKENS / SHARDS tokens each instead, the
// shards of a large distributed run for the cost of opening their merge (bench/vds_open_cost.sh):
//   moescope_make_synthetic_trace shards/t.h5 2048000 1024
// Routing mixes a domain preference with a token-id preference, so the statistics have
// something to find.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_file.h"

namespace {

void WriteSyntheticTrace(const std::string& path, int64_t total) {
  constexpr int L = 2, E = 8, K = 2, M = 5;
  moe::TraceHeader h;
  h.model_path = "/synthetic";
  h.model_config = nlohmann::json{{"vocab_size", 512}}.dump();
  h.checkpoint_sha256 = "{}";
  h.routing_policy = "{}";
  h.num_layers = L;
  h.num_experts = E;
  h.top_k = K;
  h.score_scale_factor = {4.0f, 4.0f};
  h.windowing = "{}";
  h.corpus = "{}";
  h.domains = {"a", "b", "c", "d", "e"};
  h.source_id_bytes = 12;
  moe::TraceFile file = moe::TraceFile::Create(path, h);
  moe::ExpertStats stats(M, L, E);
  uint64_t s = 88172645463325252ull;
  auto rnd = [&] {  // xorshift64
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  int64_t done = 0, doc = 0;
  while (done < total) {
    moe::TraceChunk c;
    int64_t in_chunk = 0;
    while (in_chunk < (int64_t{1} << 20) && done < total) {
      const int64_t n = std::min<int64_t>(100 + static_cast<int64_t>(rnd() % 800), total - done);
      const int16_t m = static_cast<int16_t>(doc % M);
      c.doc_tokens.push_back(n);
      c.doc_domain.push_back(m);
      std::string id = "d";  // (operator+ on a literal trips GCC 12's -Wrestrict)
      id += std::to_string(doc);
      c.doc_source_id.push_back(id);
      for (int64_t i = 0; i < n; ++i) {
        const int32_t token = static_cast<int32_t>(rnd() % 512);
        c.id.push_back(token);
        c.position.push_back(static_cast<int32_t>(i % 256));
        c.doc.push_back(static_cast<int32_t>(doc));
        c.nll.push_back(1.0f);
        int16_t ids[L * K];
        float w[L * K];
        for (int l = 0; l < L; ++l) {
          const int a = rnd() % 3 == 0 ? (m + l) % E : (token + l) % E;
          const int b = (a + 1 + static_cast<int>(rnd() % 7)) % E;
          ids[l * K] = static_cast<int16_t>(a);
          ids[l * K + 1] = static_cast<int16_t>(b);
          w[l * K] = 0.6f;
          w[l * K + 1] = 0.4f;
        }
        c.topk_ids.insert(c.topk_ids.end(), ids, ids + L * K);
        c.topk_weights.insert(c.topk_weights.end(), w, w + L * K);
        stats.AddToken(m, ids, w, K);
      }
      in_chunk += n;
      done += n;
      ++doc;
    }
    c.load = stats.load();
    c.importance = stats.importance();
    file.Commit(c);
  }
  file.MarkComplete();
  file.Close();
  std::printf("%lld tokens, %lld documents -> %s\n", static_cast<long long>(done),
              static_cast<long long>(doc), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s OUT.h5 TOKENS [SHARDS]\n", argv[0]);
    return 2;
  }
  const int64_t total = std::atoll(argv[2]);
  const int shards = argc == 4 ? std::atoi(argv[3]) : 0;
  if (shards <= 0) {
    WriteSyntheticTrace(argv[1], total);
    return 0;
  }
  const std::filesystem::path out = argv[1];
  for (int i = 0; i < shards; ++i) {
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), ".shard-%04d", i);
    std::filesystem::path p = out;
    p.replace_filename(out.stem().string() + suffix + out.extension().string());
    WriteSyntheticTrace(p.string(), total / shards);
  }
  return 0;
}
