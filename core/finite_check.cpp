#include "core/finite_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace moe {
namespace {

// Elements per chunk handed to one thread: large enough to amortise scheduling, small enough
// that a NaN near the start of a big tensor does not wait for the whole tensor on one thread.
constexpr int64_t kChunk = int64_t{1} << 18;

// Whether any of n elements of type Bits (read unaligned: safetensors data offsets need not be
// aligned) has all exponent bits set. No early exit, so the loop vectorizes.
template <typename Bits>
bool AnyExponentAllOnes(const uint8_t* p, int64_t n, Bits exponent) {
  Bits hit = 0;
#pragma omp simd reduction(| : hit)
  for (int64_t i = 0; i < n; ++i) {
    Bits v;
    std::memcpy(&v, p + i * static_cast<int64_t>(sizeof(Bits)), sizeof(Bits));
    hit |= static_cast<Bits>((v & exponent) == exponent);
  }
  return hit != 0;
}

// Index of the first element with all exponent bits set, or -1.
template <typename Bits>
int64_t FirstExponentAllOnes(const uint8_t* p, int64_t n, Bits exponent) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  int64_t first_chunk = chunks;
#pragma omp parallel for schedule(dynamic, 1) reduction(min : first_chunk) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t count = std::min(kChunk, n - begin);
    if (AnyExponentAllOnes<Bits>(p + begin * static_cast<int64_t>(sizeof(Bits)), count, exponent))
      first_chunk = std::min(first_chunk, c);
  }
  if (first_chunk == chunks) return -1;
  for (int64_t i = first_chunk * kChunk; i < n; ++i) {
    Bits v;
    std::memcpy(&v, p + i * static_cast<int64_t>(sizeof(Bits)), sizeof(Bits));
    if ((v & exponent) == exponent) return i;
  }
  return -1;  // not reached: the chunk held one
}

}  // namespace

std::optional<NonFiniteValue> FindNonFinite(const TensorView& tensor) {
  const auto* p = static_cast<const uint8_t*>(tensor.data);
  const int64_t n = tensor.numel();
  if (n == 0 || p == nullptr) return std::nullopt;
  int64_t index = -1;
  switch (tensor.dtype) {
    case DType::kF32:
      index = FirstExponentAllOnes<uint32_t>(p, n, 0x7f800000u);
      break;
    case DType::kF16:
      index = FirstExponentAllOnes<uint16_t>(p, n, 0x7c00u);
      break;
    case DType::kBF16:
      index = FirstExponentAllOnes<uint16_t>(p, n, 0x7f80u);
      break;
    default:
      return std::nullopt;
  }
  if (index < 0) return std::nullopt;
  NonFiniteValue found{index, 0};
  ToF32(tensor.dtype, p + index * static_cast<int64_t>(DTypeSize(tensor.dtype)), &found.value, 1);
  return found;
}

std::string NonFiniteName(float value) {
  if (std::isnan(value)) return "NaN";
  return value > 0 ? "+inf" : "-inf";
}

void RequireFinite(const TensorView& tensor, const std::string& subject) {
  const std::optional<NonFiniteValue> bad = FindNonFinite(tensor);
  if (!bad) return;
  FailAbout(subject, "holds " + NonFiniteName(bad->value) + " at element " +
                         std::to_string(bad->index) +
                         " (non-finite weights are refused; --allow-non-finite-weights loads them "
                         "anyway, for debugging)");
}

}  // namespace moe
