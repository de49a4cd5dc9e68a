// The cost of opening a trace and of its first full read through TraceReader: for a merged trace
// of many shards (virtual datasets), the read opens every shard (bench/vds_open_cost.sh).
//   moescope_bench_trace_open merged.h5
// prints one JSON line: open_s, read_s (tokens and routing, all rows), tokens, documents.
#include <chrono>
#include <cstdio>

#include "analysis/trace/trace_reader.h"
#include "core/error.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s TRACE.h5\n", argv[0]);
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  try {
    const auto t0 = Clock::now();
    const moe::TraceReader reader(argv[1]);
    const auto t1 = Clock::now();
    const int64_t n = reader.num_tokens();
    const moe::TokenRows tokens = reader.ReadTokens(0, n);
    const moe::RoutingRows routing = reader.ReadRouting(0, n);
    const auto t2 = Clock::now();
    int64_t check = 0;  // touch what was read
    for (int32_t id : tokens.id) check += id;
    for (int16_t e : routing.ids) check += e;
    std::printf(
        "{\"reader\": \"TraceReader\", \"open_s\": %.4f, \"read_s\": %.4f, \"tokens\": %lld, "
        "\"documents\": %lld, \"checksum\": %lld}\n",
        seconds(t0, t1), seconds(t1, t2), static_cast<long long>(n),
        static_cast<long long>(reader.num_documents()), static_cast<long long>(check));
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
