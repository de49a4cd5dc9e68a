#pragma once
// LLaMA's SentencePiece tokenizer (tokenizer.model) through libsentencepiece, with LLaMA's
// special ids: unk 0, BOS 1, EOS 2.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace moe {

class Tokenizer {
 public:
  explicit Tokenizer(const std::filesystem::path& model_file);
  ~Tokenizer();

  // BOS is prepended as LLaMA's tokenizer does by default; EOS only on request.
  std::vector<int32_t> Encode(const std::string& text, bool add_bos = true,
                              bool add_eos = false) const;
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
  // characters: true when no piece of the vocabulary holds a character followed by the
  // whitespace mark U+2581 and "a b" encodes as "a" then "b" (a dummy prefix stands for the
  // space). Then no piece can span such a space, so BPE merges and unigram segmentations on its
  // two sides are independent, and encoding the two sides separately (the second with its dummy
  // prefix in place of the space) gives the same ids. LLaMA's tokenizer has this property; a
  // tokenizer without it is encoded whole.
  bool splits_at_spaces() const { return splits_at_spaces_; }
  // Special tokens (BOS, EOS, padding) are dropped.
  std::string Decode(const std::vector<int32_t>& ids) const;
  std::string Piece(int32_t id) const;

  int vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;

 private:
  std::filesystem::path path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool splits_at_spaces_ = false;
};

}  // namespace moe
