#include "analysis/split/split_corpus.h"

#include <algorithm>

#include "analysis/corpus/corpus.h"
#include "core/config.h"
#include "core/error.h"

namespace moe {

void CheckCorpusFiles(const std::vector<std::filesystem::path>& files, const std::string& flag) {
  for (const std::filesystem::path& f : files) {
    if (!std::filesystem::exists(f)) Fail(f.string(), flag + " corpus file does not exist");
    if (std::filesystem::is_directory(f))
      Fail(f.string(), flag + " corpus file is a folder, expected a JSONL or text file");
  }
}

std::vector<std::vector<int32_t>> ReadSplitCorpus(const std::vector<std::filesystem::path>& files,
                                                  const Tokenizer* tokenizer,
                                                  const ModelConfig& config,
                                                  const std::string& flag) {
  CheckCorpusFiles(files, flag);
  CorpusOptions options;
  options.default_domain = "default";
  const Corpus corpus = ReadCorpus(files, tokenizer, config.vocab_size, options);
  const int64_t window = std::max<int64_t>(1, config.context_length());
  std::vector<std::vector<int32_t>> windows;
  for (const CorpusDocument& doc : corpus.documents) {
    const int64_t n = static_cast<int64_t>(doc.ids.size());
    for (int64_t begin = 0; begin < n; begin += window) {
      const int64_t end = std::min(n, begin + window);
      windows.emplace_back(doc.ids.begin() + begin, doc.ids.begin() + end);
    }
  }
  if (windows.empty()) Fail(flag, "the corpus files hold no tokens");
  return windows;
}

}  // namespace moe
