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

// Index of the first element at or after `begin` with all exponent bits set, or -1.
template <typename Bits>
int64_t FirstExponentAllOnes(const uint8_t* p, int64_t begin, int64_t n, Bits exponent) {
  for (int64_t i = begin; i < n; ++i) {
    Bits v;
    std::memcpy(&v, p + i * static_cast<int64_t>(sizeof(Bits)), sizeof(Bits));
    if ((v & exponent) == exponent) return i;
  }
  return -1;
}

// One chunk of one tensor, the unit of work of the parallel scan.
struct Chunk {
  size_t tensor;
  int64_t begin;
};

// Whether elements [begin, begin + kChunk) of the tensor may hold a non-finite value (always
// false for dtypes other than F32, F16 and BF16).
bool ChunkHasNonFinite(const TensorView& t, int64_t begin) {
  const auto* p =
      static_cast<const uint8_t*>(t.data) + begin * static_cast<int64_t>(DTypeSize(t.dtype));
  const int64_t count = std::min(kChunk, t.numel() - begin);
  switch (t.dtype) {
    case DType::kF32:
      return AnyExponentAllOnes<uint32_t>(p, count, 0x7f800000u);
    case DType::kF16:
      return AnyExponentAllOnes<uint16_t>(p, count, 0x7c00u);
    case DType::kBF16:
      return AnyExponentAllOnes<uint16_t>(p, count, 0x7f80u);
    default:
      return false;
  }
}

// The first non-finite element of the tensor at or after `begin`.
std::optional<NonFiniteValue> FirstFrom(const TensorView& t, int64_t begin) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  const int64_t n = t.numel();
  int64_t index = -1;
  if (t.dtype == DType::kF32) index = FirstExponentAllOnes<uint32_t>(p, begin, n, 0x7f800000u);
  if (t.dtype == DType::kF16) index = FirstExponentAllOnes<uint16_t>(p, begin, n, 0x7c00u);
  if (t.dtype == DType::kBF16) index = FirstExponentAllOnes<uint16_t>(p, begin, n, 0x7f80u);
  if (index < 0) return std::nullopt;
  NonFiniteValue found{index, 0};
  ToF32(t.dtype, p + index * static_cast<int64_t>(DTypeSize(t.dtype)), &found.value, 1);
  return found;
}

// The first (tensor index, non-finite value) over all tensors: every chunk of every tensor is
// checked in one parallel loop, then the first chunk that holds one is searched element by
// element.
std::optional<std::pair<size_t, NonFiniteValue>> FirstNonFinite(
    const std::vector<const TensorView*>& tensors) {
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t]->data == nullptr) continue;
    for (int64_t begin = 0; begin < tensors[t]->numel(); begin += kChunk)
      chunks.push_back({t, begin});
  }
  const int64_t count = static_cast<int64_t>(chunks.size());
  int64_t first = count;
#pragma omp parallel for schedule(dynamic, 1) reduction(min : first) if (count > 1)
  for (int64_t c = 0; c < count; ++c) {
    if (c < first && ChunkHasNonFinite(*tensors[chunks[c].tensor], chunks[c].begin))
      first = std::min(first, c);
  }
  if (first == count) return std::nullopt;
  const Chunk& chunk = chunks[static_cast<size_t>(first)];
  return std::make_pair(chunk.tensor, *FirstFrom(*tensors[chunk.tensor], chunk.begin));
}

[[noreturn]] void FailNonFinite(const std::string& subject, const NonFiniteValue& bad) {
  FailAbout(subject, "holds " + NonFiniteName(bad.value) + " at element " +
                         std::to_string(bad.index) +
                         " (non-finite weights are refused; --allow-non-finite-weights loads them "
                         "anyway, for debugging)");
}

}  // namespace

std::optional<NonFiniteValue> FindNonFinite(const TensorView& tensor) {
  const auto found = FirstNonFinite({&tensor});
  if (!found) return std::nullopt;
  return found->second;
}

std::string NonFiniteName(float value) {
  if (std::isnan(value)) return "NaN";
  return value > 0 ? "+inf" : "-inf";
}

void RequireFinite(const TensorView& tensor, const std::string& subject) {
  if (const std::optional<NonFiniteValue> bad = FindNonFinite(tensor)) FailNonFinite(subject, *bad);
}

void RequireAllFinite(const std::vector<std::pair<std::string, TensorView>>& tensors) {
  std::vector<const TensorView*> views;
  views.reserve(tensors.size());
  for (const auto& [subject, view] : tensors) views.push_back(&view);
  if (const auto bad = FirstNonFinite(views)) FailNonFinite(tensors[bad->first].first, bad->second);
}

}  // namespace moe
