#include "core/nfc.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "core/error.h"

namespace moe {

std::string NfcNormalized(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) Fail("ICU", std::string("has no NFC data: ") + u_errorName(status));
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  // Most text is already NFC: the quick check skips the copy.
  if (nfc->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) Fail("NFC", std::string("cannot normalize text: ") + u_errorName(status));
  return out;
}

}  // namespace moe
