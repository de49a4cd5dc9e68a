#pragma once
// The bundled sample corpus's files (datasets/sample/*.jsonl), sorted: the benchmarks' default.
#include <algorithm>
#include <filesystem>
#include <vector>

namespace moe::bench {

inline std::vector<std::filesystem::path> SampleCorpus() {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path dir = std::filesystem::path(MOESCOPE_SOURCE_DIR) / "datasets/sample";
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace moe::bench
