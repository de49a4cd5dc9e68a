#pragma once
// LLaMA's SentencePiece tokenizer (tokenizer.model) through libsentencepiece, with LLaMA's
// special ids: unk 0, BOS 1, EOS 2.
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
  // Special tokens (BOS, EOS, padding) are dropped.
  std::string Decode(const std::vector<int32_t>& ids) const;
  std::string Piece(int32_t id) const;

  int vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;

 private:
  std::filesystem::path path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace moe
