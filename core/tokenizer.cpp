#include "core/tokenizer.h"

#include <sentencepiece_processor.h>

#include "core/error.h"

namespace moe {

Tokenizer::Tokenizer(const std::filesystem::path& model_file)
    : path_(model_file), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!std::filesystem::exists(model_file)) Fail(model_file.string(), "does not exist");
  const auto status = sp_->Load(model_file.string());
  if (!status.ok()) Fail(model_file.string(), "is not a SentencePiece model: " + status.ToString());
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(const std::string& text, bool add_bos, bool add_eos) const {
  std::vector<int> pieces;
  const auto status = sp_->Encode(text, &pieces);
  if (!status.ok()) Fail(path_.string(), "cannot encode text: " + status.ToString());
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(bos_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::vector<int> keep;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      Fail(path_.string(), "cannot decode id " + std::to_string(id) + " (vocabulary has " +
                               std::to_string(vocab_size()) + " pieces)");
    if (!sp_->IsControl(id)) keep.push_back(id);
  }
  std::string text;
  const auto status = sp_->Decode(keep, &text);
  if (!status.ok()) Fail(path_.string(), "cannot decode: " + status.ToString());
  return text;
}

std::string Tokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) Fail(path_.string(), "no piece with id " + std::to_string(id));
  return sp_->IdToPiece(id);
}

int Tokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}
int32_t Tokenizer::bos_id() const {
  return sp_->bos_id() >= 0 ? sp_->bos_id() : 1;
}
int32_t Tokenizer::eos_id() const {
  return sp_->eos_id() >= 0 ? sp_->eos_id() : 2;
}

}  // namespace moe
