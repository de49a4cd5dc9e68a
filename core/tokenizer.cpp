#include "core/tokenizer.h"

#include <algorithm>

#include "core/bpe_tokenizer.h"
#include "core/sentencepiece_tokenizer.h"

namespace moe {
namespace {

bool IsPrintableAscii(char c) {
  return c > ' ' && c < 0x7f;
}

// Where the piece that starts at `start` ends: the first single space at or after
// start + piece_bytes with a printable ASCII character on both sides, or the end of the text.
size_t PieceEnd(const std::string& text, size_t start, size_t piece_bytes) {
  if (text.size() - start <= piece_bytes) return text.size();
  for (size_t at = text.find(' ', start + piece_bytes); at != std::string::npos;
       at = text.find(' ', at + 1)) {
    if (at + 1 < text.size() && IsPrintableAscii(text[at - 1]) && IsPrintableAscii(text[at + 1]))
      return at;
  }
  return text.size();
}

}  // namespace

std::vector<int32_t> Tokenizer::EncodePrefix(const std::string& text, bool add_bos,
                                             size_t max_tokens, size_t piece_bytes,
                                             size_t* bytes_encoded) const {
  if (!splits_at_spaces()) piece_bytes = text.size();
  piece_bytes = std::max<size_t>(piece_bytes, 1);
  // The tokens put before any text (BOS, or a template's leading special tokens).
  std::vector<int32_t> ids = Encode(std::string(), add_bos, false);
  const size_t space_kept = split_space_starts_next_piece() ? 0 : 1;
  size_t start = 0;
  while (start < text.size() && (max_tokens == 0 || ids.size() < max_tokens)) {
    const size_t end = PieceEnd(text, start, piece_bytes);
    const std::vector<int32_t> piece = Encode(text.substr(start, end - start), false);
    ids.insert(ids.end(), piece.begin(), piece.end());
    start = end == text.size() ? end : end + space_kept;
  }
  if (bytes_encoded) *bytes_encoded = start;
  if (max_tokens > 0 && ids.size() > max_tokens) ids.resize(max_tokens);
  return ids;
}

std::unique_ptr<Tokenizer> OpenTokenizerFile(const std::filesystem::path& file) {
  if (file.extension() == ".json") return std::make_unique<BpeTokenizer>(file);
  return std::make_unique<SentencePieceTokenizer>(file);
}

std::filesystem::path TokenizerFileOf(const std::filesystem::path& model_dir) {
  for (const char* name : {"tokenizer.model", "tokenizer.json"})
    if (std::filesystem::exists(model_dir / name)) return model_dir / name;
  return {};
}

std::unique_ptr<Tokenizer> OpenTokenizer(const std::filesystem::path& model_dir) {
  const std::filesystem::path file = TokenizerFileOf(model_dir);
  return file.empty() ? nullptr : OpenTokenizerFile(file);
}

}  // namespace moe
