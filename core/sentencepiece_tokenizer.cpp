#include "core/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <string_view>

#include "core/error.h"
#include "core/input_file.h"

namespace moe {
namespace {

// U+2581, the mark SentencePiece puts in place of a space.
constexpr std::string_view kSpaceMark = "\xe2\x96\x81";

// True when no ordinary piece holds a character followed by the space mark: such a piece would
// let an encoding merge across a space. Whitespace-only pieces ("▁▁▁") and pieces that start
// with the mark are what LLaMA's vocabulary holds, and neither can span "x▁".
bool NoPieceSpansASpace(const sentencepiece::SentencePieceProcessor& sp) {
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    if (sp.IsControl(id) || sp.IsUnknown(id) || sp.IsByte(id)) continue;
    const std::string_view piece = sp.IdToPiece(id);
    for (size_t at = piece.find(kSpaceMark); at != std::string_view::npos;
         at = piece.find(kSpaceMark, at + kSpaceMark.size())) {
      // Anything but another mark before it (including a 1- or 2-byte character) is a span.
      if (at > 0 && (at < kSpaceMark.size() ||
                     piece.substr(at - kSpaceMark.size(), kSpaceMark.size()) != kSpaceMark))
        return false;
    }
  }
  return true;
}

// Whether `text` (words with single spaces) encodes as its space-separated parts encoded one by
// one: the dummy prefix of each later part must stand for the space before it.
bool SpaceSplitMatches(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> parts;
  size_t start = 0;
  for (size_t space = text.find(' '); start <= text.size(); space = text.find(' ', start)) {
    if (space == std::string::npos) space = text.size();
    const std::vector<int32_t> part = tok.Encode(text.substr(start, space - start), false);
    parts.insert(parts.end(), part.begin(), part.end());
    start = space + 1;
  }
  return parts == tok.Encode(text, false);
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file)
    : path_(model_file), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  CheckInputFile(model_file, "a SentencePiece tokenizer.model");
  const auto status = sp_->Load(model_file.string());
  if (!status.ok()) Fail(model_file.string(), "is not a SentencePiece model: " + status.ToString());
  splits_at_spaces_ = NoPieceSpansASpace(*sp_) && SpaceSplitMatches(*this, "a b") &&
                      SpaceSplitMatches(*this, "Hello, world. x=1 (y)");
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::Encode(const std::string& text, bool add_bos,
                                                    bool add_eos) const {
  std::vector<int> pieces;
  const auto status = sp_->Encode(text, &pieces);
  if (!status.ok()) Fail(path_.string(), "cannot encode text: " + status.ToString());
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(bos_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

std::string SentencePieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
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

std::string SentencePieceTokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) Fail(path_.string(), "no piece with id " + std::to_string(id));
  return sp_->IdToPiece(id);
}

std::string SentencePieceTokenizer::PieceBytes(int32_t id) const {
  const std::string piece = Piece(id);
  if (sp_->IsByte(id))
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  if (sp_->IsControl(id) || sp_->IsUnknown(id)) return piece;
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

int SentencePieceTokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}
int32_t SentencePieceTokenizer::bos_id() const {
  return sp_->bos_id() >= 0 ? sp_->bos_id() : 1;
}
int32_t SentencePieceTokenizer::eos_id() const {
  return sp_->eos_id() >= 0 ? sp_->eos_id() : 2;
}

}  // namespace moe
