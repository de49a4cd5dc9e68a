#include "core/bpe_tokenizer.h"

#include <algorithm>

#include "core/byte_level.h"
#include "core/error.h"
#include "core/nfc.h"
#include "core/utf8.h"

namespace moe {
namespace {

// The added tokens matched in one of the two passes, normalized ones with their content
// normalized (so that they match the normalized text).
std::vector<AddedTokenSpec> AddedTokensOfPass(const BpeTokenizerSpec& spec, bool normalized) {
  std::vector<AddedTokenSpec> out;
  for (const AddedTokenSpec& a : spec.added_tokens) {
    if (a.normalized != normalized) continue;
    out.push_back(a);
    if (normalized && spec.nfc) out.back().content = NfcNormalized(out.back().content);
  }
  return out;
}

// Whether an added token can take part of "x y" (a single space between printable ASCII): it
// holds a space next to another character or is a lone space, or it takes whitespace beside it.
bool CanSpanASpace(const AddedTokenSpec& a) {
  if (a.lstrip || a.rstrip) return true;
  if (a.content.find(' ') == std::string::npos) return false;
  return a.content == " " || a.content.find_first_not_of(' ') != std::string::npos;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::filesystem::path& tokenizer_json)
    : BpeTokenizer(tokenizer_json, ReadTokenizerJson(tokenizer_json)) {}

BpeTokenizer::BpeTokenizer(const std::filesystem::path& file, const BpeTokenizerSpec& spec)
    : where_(file.string()),
      model_(spec, where_),
      pre_tokenizer_(spec, where_),
      nfc_(spec.nfc),
      raw_added_(AddedTokensOfPass(spec, false)),
      normalized_added_(AddedTokensOfPass(spec, true)),
      template_before_(spec.template_before),
      template_after_(spec.template_after) {
  int32_t max_id = -1;
  for (const auto& entry : spec.vocab) max_id = std::max(max_id, entry.second);
  for (const AddedTokenSpec& a : spec.added_tokens) max_id = std::max(max_id, a.id);
  vocab_size_ = max_id + 1;
  // Real files number their tokens 0..N-1; a far-off id would only size the tables below.
  const size_t entries = spec.vocab.size() + spec.added_tokens.size();
  if (static_cast<size_t>(vocab_size_) > 2 * entries + 1024)
    Fail(where_, "model.vocab and added_tokens: id " + std::to_string(max_id) +
                     " is far beyond the " + std::to_string(entries) +
                     " tokens; ids must run from 0 with few gaps");
  piece_of_id_.resize(static_cast<size_t>(vocab_size_));
  has_id_.assign(static_cast<size_t>(vocab_size_), 0);
  special_.assign(static_cast<size_t>(vocab_size_), 0);
  for (const auto& [token, id] : spec.vocab) {
    piece_of_id_[id] = token;
    has_id_[id] = 1;
  }
  std::vector<char> added(static_cast<size_t>(vocab_size_), 0);
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const AddedTokenSpec& a = spec.added_tokens[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (added[a.id])
      Fail(where_, field + ".id " + std::to_string(a.id) + " is the id of an earlier added token");
    // An added token may repeat a vocabulary entry (GPT-NeoX's <|endoftext|> is both), with
    // the same id.
    if (has_id_[a.id] && piece_of_id_[a.id] != a.content)
      Fail(where_, field + ".id " + std::to_string(a.id) + " is already the id of " +
                       Quoted(Clipped(piece_of_id_[a.id])) + " in model.vocab");
    const int32_t in_vocab = model_.IdOf(a.content);
    if (in_vocab >= 0 && in_vocab != a.id)
      Fail(where_, field + ".content " + Quoted(Clipped(a.content)) + " has id " +
                       std::to_string(in_vocab) + " in model.vocab, not " + std::to_string(a.id));
    added[a.id] = 1;
    piece_of_id_[a.id] = a.content;
    has_id_[a.id] = 1;
    special_[a.id] = a.special ? 1 : 0;
  }
  for (const int32_t id : template_before_)
    if (id >= vocab_size_ || !has_id_[id])
      Fail(where_, "post_processor's template names id " + std::to_string(id) +
                       ", which is not in the vocabulary");
  for (const int32_t id : template_after_)
    if (id >= vocab_size_ || !has_id_[id])
      Fail(where_, "post_processor's template names id " + std::to_string(id) +
                       ", which is not in the vocabulary");

  if (!template_before_.empty()) bos_id_ = template_before_.front();
  if (!template_after_.empty()) {
    eos_id_ = template_after_.back();
  } else {
    for (const AddedTokenSpec& a : spec.added_tokens)
      if (a.special && a.content == "<|endoftext|>") eos_id_ = a.id;
  }

  bool known_regexes = !spec.split_patterns.empty() || spec.byte_level_regex;
  for (const std::string& p : spec.split_patterns)
    known_regexes = known_regexes && (p == kGpt2SplitPattern || p == kQwen2SplitPattern);
  splits_at_spaces_ =
      known_regexes && !spec.add_prefix_space &&
      std::none_of(spec.added_tokens.begin(), spec.added_tokens.end(), CanSpanASpace);
}

std::vector<int32_t> BpeTokenizer::Encode(const std::string& text, bool add_bos,
                                          bool add_eos) const {
  std::vector<int32_t> ids;
  if (add_bos) ids = template_before_;
  const bool valid = IsValidUtf8(text);
  const std::string replaced = valid ? std::string() : ValidUtf8(text);
  const std::string_view whole = valid ? std::string_view(text) : std::string_view(replaced);
  std::vector<TextSegment> segments;
  raw_added_.Split(whole, segments);
  for (const TextSegment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      EncodeText(s.text, ids);
    }
  }
  if (add_eos) {
    if (!template_after_.empty()) {
      ids.insert(ids.end(), template_after_.begin(), template_after_.end());
    } else if (eos_id_ >= 0) {
      ids.push_back(eos_id_);
    }
  }
  return ids;
}

void BpeTokenizer::EncodeText(std::string_view text, std::vector<int32_t>& ids) const {
  const std::string normalized = nfc_ ? NfcNormalized(text) : std::string();
  const std::string_view t = nfc_ ? std::string_view(normalized) : text;
  std::vector<TextSegment> segments;
  normalized_added_.Split(t, segments);
  for (const TextSegment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    pre_tokenizer_.ForEachWord(s.text,
                               [&](std::string_view word) { model_.EncodeWord(word, ids); });
  }
}

std::string BpeTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_ || !has_id_[id])
      Fail(where_, "cannot decode id " + std::to_string(id) + " (no token has it; vocabulary of " +
                       std::to_string(vocab_size_) + ")");
    if (special_[id]) continue;
    // A token outside the byte-level alphabet (an added token such as a run of spaces) stands
    // for its own UTF-8, as Hugging Face's ByteLevel decoder reads it.
    if (!AppendBytesOfByteLevel(piece_of_id_[id], bytes)) bytes += piece_of_id_[id];
  }
  return ValidUtf8(bytes);
}

std::string BpeTokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || !has_id_[id])
    Fail(where_, "no piece with id " + std::to_string(id));
  return piece_of_id_[id];
}

std::string BpeTokenizer::PieceBytes(int32_t id) const {
  const std::string piece = Piece(id);
  std::string bytes;
  if (special_[id] || !AppendBytesOfByteLevel(piece, bytes)) return piece;  // as Decode reads it
  return bytes;
}

}  // namespace moe
