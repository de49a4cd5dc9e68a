#pragma once
// cache.json of `moescope cache-sim` (ExportCacheSim, docs/cache-sim.md) read back. Policies are
// kept by the name the file gives, so rows of a policy this build does not simulate still read;
// numeric row fields beyond the standard ones (a policy's own measures) are kept by name too.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

struct CacheSimTableRow {
  int layer = 0, domain = 0;  // domain M = all
  int policy = 0;             // index into CacheSimTable::policies
  int capacity = 0;
  double hit_rate = 0, ci_low = 0, ci_high = 0;  // NaN interval where the file has none
  double misses_per_token = 0, bytes_per_token = 0;
  int64_t requests = 0, tokens = 0, docs = 0;
  std::vector<double> extra;  // [extra_fields], NaN where the row lacks the field
};

struct CacheSimTable {
  std::string trace;
  int layers = 0, experts = 0, top_k = 0;
  bool cold_start = false;
  double ci_level = 0.95;
  int min_documents = 0;
  std::vector<double> expert_bytes;       // [L] bytes per miss
  std::vector<std::string> domains;       // [M], in the order rows name them; row M is "all"
  std::vector<std::string> policies;      // in the order rows name them
  std::vector<std::string> extra_fields;  // further numeric row fields, by name
  std::vector<int> capacities;            // every capacity of the rows, ascending
  std::vector<CacheSimTableRow> rows;     // as in the file
};

// Throws Error naming the file and field: not JSON, another format, a missing or mistyped field
// ("rows[3].hit_rate"), a layer or capacity out of range.
CacheSimTable ReadCacheSimTable(const std::filesystem::path& json);

}  // namespace moe
