#pragma once
// LLaMA's SentencePiece tokenizer (tokenizer.model) through libsentencepiece, with LLaMA's
// special ids: unk 0, BOS 1, EOS 2.
#include <filesystem>
#include <memory>

#include "core/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace moe {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;

  // BOS is prepended as LLaMA's tokenizer does by default; EOS only on request.
  std::vector<int32_t> Encode(const std::string& text, bool add_bos = true,
                              bool add_eos = false) const override;
  // True when no piece of the vocabulary holds a character followed by the whitespace mark
  // U+2581 and "a b" encodes as "a" then "b" (a dummy prefix stands for the space). Then no piece
  // can span such a space, so BPE merges and unigram segmentations on its two sides are
  // independent, and encoding the two sides separately (the second with its dummy prefix in
  // place of the space) gives the same ids. LLaMA's tokenizer has this property.
  bool splits_at_spaces() const override { return splits_at_spaces_; }
  std::string Decode(const std::vector<int32_t>& ids) const override;
  std::string Piece(int32_t id) const override;
  std::string PieceBytes(int32_t id) const override;

  int vocab_size() const override;
  int32_t bos_id() const override;
  int32_t eos_id() const override;

 protected:
  bool split_space_starts_next_piece() const override { return false; }

 private:
  std::filesystem::path path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool splits_at_spaces_ = false;
};

}  // namespace moe
