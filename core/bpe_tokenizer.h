#pragma once
// A Hugging Face tokenizer.json byte-level BPE tokenizer (GPT-2's kind: GPT-NeoX/OLMoE, Qwen
// 1.5/2/3): added tokens found first, then NFC, the pre-tokenizer's regex splits, the
// byte-level alphabet and BPE merges by rank. docs/tokenizers.md says what is supported.
//
// Text that is not valid UTF-8 is encoded as ValidUtf8 (core/utf8.h) makes it: each invalid
// byte sequence becomes U+FFFD, as Python's errors="replace" decoding does.
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/added_tokens.h"
#include "core/bpe_model.h"
#include "core/pre_tokenizer.h"
#include "core/tokenizer.h"

namespace moe {

class BpeTokenizer : public Tokenizer {
 public:
  explicit BpeTokenizer(const std::filesystem::path& tokenizer_json);

  // add_bos: the special tokens the post-processor's template puts before the text (none for a
  // ByteLevel or null post-processor). add_eos: those the template puts after it, or eos_id()
  // when the template puts none there.
  std::vector<int32_t> Encode(const std::string& text, bool add_bos = true,
                              bool add_eos = false) const override;
  // True when the pre-tokenizer's regexes are GPT-2's or Qwen2's (each starts a word at a single
  // space before a printable character and never runs a word across one), no prefix space is
  // added, and no added token holds a space beside another character or strips whitespace.
  bool splits_at_spaces() const override { return splits_at_spaces_; }
  // Special added tokens are dropped; the bytes of the rest, read as UTF-8 with each invalid
  // sequence as U+FFFD (the ByteLevel decoder's lossy reading).
  std::string Decode(const std::vector<int32_t>& ids) const override;
  std::string Piece(int32_t id) const override;
  std::string PieceBytes(int32_t id) const override;

  int vocab_size() const override { return vocab_size_; }
  // The first token the template puts before the text, else -1 (Qwen: no BOS).
  int32_t bos_id() const override { return bos_id_; }
  // The last token the template puts after the text, else the special token <|endoftext|> when
  // there is one, else -1.
  int32_t eos_id() const override { return eos_id_; }

 protected:
  bool split_space_starts_next_piece() const override { return true; }

 private:
  BpeTokenizer(const std::filesystem::path& tokenizer_json, const BpeTokenizerSpec& spec);
  // Encodes one run of text without added tokens of the first pass.
  void EncodeText(std::string_view text, std::vector<int32_t>& ids) const;

  std::string where_;
  BpeModel model_;
  PreTokenizer pre_tokenizer_;
  bool nfc_ = false;
  AddedTokenMatcher raw_added_;         // added tokens matched in the text as given
  AddedTokenMatcher normalized_added_;  // those matched after normalization
  std::vector<std::string> piece_of_id_;
  std::vector<char> has_id_;   // whether an id names a token (ids may have gaps)
  std::vector<char> special_;  // whether an id is a special added token
  std::vector<int32_t> template_before_, template_after_;
  int vocab_size_ = 0;
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool splits_at_spaces_ = false;
};

}  // namespace moe
