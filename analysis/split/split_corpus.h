#pragma once
// The token windows that expert construction runs through a model (co-activation measurement,
// score-scale calibration): every document of the corpus files cut into consecutive windows of
// at most the context length, each run on its own (positions from 0).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

class Tokenizer;
struct ModelConfig;

// `flag` names the option the files came from, for messages. Throws Error naming the file when
// one does not exist, and naming the flag when the files hold no tokens. `tokenizer` may be null
// when every document is pre-tokenized ("input_ids").
std::vector<std::vector<int32_t>> ReadSplitCorpus(const std::vector<std::filesystem::path>& files,
                                                  const Tokenizer* tokenizer,
                                                  const ModelConfig& config,
                                                  const std::string& flag);

// Throws Error "<file>: <flag> corpus file does not exist" for the first missing file.
void CheckCorpusFiles(const std::vector<std::filesystem::path>& files, const std::string& flag);

}  // namespace moe
