#include "analysis/distributed/shard_plan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace moe::distributed {

std::vector<std::pair<int64_t, int64_t>> PlanShards(std::span<const int64_t> document_tokens,
                                                    int ranks) {
  ranks = std::max(ranks, 1);
  const int64_t docs = static_cast<int64_t>(document_tokens.size());
  std::vector<int64_t> prefix(document_tokens.size() + 1, 0);
  for (size_t d = 0; d < document_tokens.size(); ++d)
    prefix[d + 1] = prefix[d] + document_tokens[d];
  const int64_t total = prefix.back();
  std::vector<std::pair<int64_t, int64_t>> plan;
  int64_t begin = 0;
  for (int r = 0; r < ranks; ++r) {
    int64_t end = docs;
    if (r + 1 < ranks) {
      // The boundary nearest to the target share, in integers: target = total * (r+1) / ranks.
      const __int128 target_num = static_cast<__int128>(total) * (r + 1);  // target * ranks
      auto dist = [&](int64_t d) {
        const __int128 v =
            static_cast<__int128>(prefix[static_cast<size_t>(d)]) * ranks - target_num;
        return v < 0 ? -v : v;
      };
      int64_t d = begin;
      while (d < docs && static_cast<__int128>(prefix[static_cast<size_t>(d)]) * ranks < target_num)
        ++d;
      if (d > begin && dist(d - 1) <= dist(d)) --d;
      end = std::max(begin, d);
    }
    plan.emplace_back(begin, end);
    begin = end;
  }
  return plan;
}

std::filesystem::path ShardPath(const std::filesystem::path& output, int rank) {
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".rank-%04d", rank);
  std::filesystem::path p = output;
  p.replace_filename(output.stem().string() + suffix + output.extension().string());
  return p;
}

int LauncherWorldSize() {
  auto number = [](const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return -1;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return (*end == '\0' && n > 0 && n < (1L << 24)) ? static_cast<int>(n) : -1;
  };
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const int n = number(name); n > 0) return n;
  if (std::getenv("PMIX_RANK") != nullptr) return 1;
  return 0;
}

}  // namespace moe::distributed
