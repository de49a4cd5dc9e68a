#pragma once
// What the engine and the analyses ask of a tokenizer, whichever kind a model folder holds:
// LLaMA's SentencePiece tokenizer.model (SentencePieceTokenizer) or a Hugging Face tokenizer.json
// byte-level BPE (BpeTokenizer, docs/tokenizers.md). OpenTokenizer picks the one a folder has.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace moe {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // With add_bos, the tokens the tokenizer puts before a text: LLaMA's BOS, or the special tokens
  // a tokenizer.json post-processor's template puts before the sequence (none for Qwen's, whose
  // bos_id() is -1). With add_eos, EOS (or the template's tokens after the sequence).
  virtual std::vector<int32_t> Encode(const std::string& text, bool add_bos = true,
                                      bool add_eos = false) const = 0;
  // The first `max_tokens` ids of Encode(text, add_bos) (every id when max_tokens is 0), with
  // time and memory that grow with max_tokens rather than with the text: the text is encoded in
  // pieces of about `piece_bytes` and encoding stops once enough ids are in. The result equals
  // Encode(text, add_bos) cut to max_tokens, bit for bit; see splits_at_spaces() for why, and for
  // the tokenizers that are encoded whole. `bytes_encoded`, when given, receives how many bytes
  // of text were encoded.
  static constexpr size_t kPieceBytes = size_t{64} << 10;
  std::vector<int32_t> EncodePrefix(const std::string& text, bool add_bos, size_t max_tokens,
                                    size_t piece_bytes = kPieceBytes,
                                    size_t* bytes_encoded = nullptr) const;
  // Whether encoding may be split at a single ASCII space between two printable ASCII
  // characters, the two sides encoded separately giving the ids of the whole: no token can span
  // such a space. Each implementation says why its tokens cannot; a tokenizer without the
  // property is encoded whole.
  virtual bool splits_at_spaces() const = 0;
  // Special tokens (BOS, EOS, padding) are dropped.
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  // The vocabulary's string for an id, as the tokenizer file spells it ("▁the", "Ġthe").
  virtual std::string Piece(int32_t id) const = 0;
  // The bytes a token stands for in text: SentencePiece's "▁" as a space and a byte-fallback
  // "<0xNN>" as its byte; a byte-level BPE token's characters as the bytes they encode ("Ġthe"
  // is " the"). Special tokens give their piece. May be part of one UTF-8 character only.
  virtual std::string PieceBytes(int32_t id) const = 0;

  virtual int vocab_size() const = 0;
  // -1 when the tokenizer has no such token.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;

 protected:
  // Where the space of a split goes (splits_at_spaces): SentencePiece drops it, the next piece's
  // dummy prefix standing for it; byte-level BPE keeps it at the start of the next piece.
  virtual bool split_space_starts_next_piece() const = 0;
};

// The tokenizer file a model folder uses: tokenizer.model, else tokenizer.json, else "".
std::filesystem::path TokenizerFileOf(const std::filesystem::path& model_dir);
// The tokenizer of a model folder: tokenizer.model when present, else tokenizer.json; null when
// the folder has neither.
std::unique_ptr<Tokenizer> OpenTokenizer(const std::filesystem::path& model_dir);
// A tokenizer file: a name ending in ".json" is a tokenizer.json, anything else a SentencePiece
// model.
std::unique_ptr<Tokenizer> OpenTokenizerFile(const std::filesystem::path& file);

}  // namespace moe
