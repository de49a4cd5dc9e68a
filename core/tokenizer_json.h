#pragma once
// The parts of a Hugging Face tokenizer.json that byte-level BPE uses, read and checked: the
// plain description BpeTokenizer is built from. Everything the file holds that moescope cannot
// reproduce (another model type, normalizer, pre-tokenizer, post-processor or decoder) is an
// Error naming the file and the field; docs/tokenizers.md lists what is read and how.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace moe {

// One entry of "added_tokens": matched in the text before pre-tokenization.
struct AddedTokenSpec {
  int32_t id = 0;
  std::string content;
  bool special = false;      // dropped by Decode
  bool single_word = false;  // only where no word character touches it
  bool lstrip = false;       // takes the whitespace before it
  bool rstrip = false;       // takes the whitespace after it
  bool normalized = false;   // matched in the normalized text (else in the text as given)
};

struct BpeTokenizerSpec {
  // model (type "BPE")
  std::vector<std::pair<std::string, int32_t>> vocab;       // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;  // model.merges, rank = index
  bool ignore_merges = false;  // a word that is a vocabulary entry is that entry, unmerged
  std::string unk_token;       // "" when null: characters outside the vocabulary are dropped
  std::vector<AddedTokenSpec> added_tokens;
  // normalizer: null or NFC (alone or in a Sequence)
  bool nfc = false;
  // pre_tokenizer: regex splits ("Split", Isolated) in order, then ByteLevel: a space before
  // each piece that lacks one (add_prefix_space), GPT-2's split (use_regex), and the
  // bytes-to-characters mapping.
  std::vector<std::string> split_patterns;
  bool add_prefix_space = false;
  bool byte_level_regex = false;
  // post_processor: the ids its template (TemplateProcessing, single sequence) puts before and
  // after the text; empty for ByteLevel or null.
  std::vector<int32_t> template_before, template_after;
};

// GPT-2's pre-tokenization pattern (ByteLevel with use_regex).
extern const char* const kGpt2SplitPattern;
// Qwen2's (a Split before ByteLevel without regex).
extern const char* const kQwen2SplitPattern;

BpeTokenizerSpec ReadTokenizerJson(const std::filesystem::path& file);

}  // namespace moe
