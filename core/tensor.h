#pragma once
// Element types and non-owning views of tensors as they sit in checkpoint files.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

enum class DType { kF32, kF16, kBF16, kI32, kI64, kI16, kU8 };

size_t DTypeSize(DType dtype);
// The safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "I16", "U8".
const char* DTypeName(DType dtype);
std::optional<DType> ParseDType(std::string_view name);

using Shape = std::vector<int64_t>;
std::string ShapeString(const Shape& shape);  // "[4, 64]"
int64_t NumElements(const Shape& shape);

// A tensor that lives elsewhere (a memory-mapped file, a buffer owned by the caller).
// Row-major, contiguous, little-endian.
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;

  int64_t numel() const { return NumElements(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
};

// A tensor with its own bytes, for writing files and for tests.
struct OwnedTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<uint8_t> bytes;

  TensorView view() const { return {dtype, shape, bytes.data()}; }
};

OwnedTensor MakeF32Tensor(std::string name, Shape shape, const float* values);
OwnedTensor MakeI32Tensor(std::string name, Shape shape, const int32_t* values);

// bf16 is the upper half of an IEEE float; conversion rounds to nearest even.
inline float BF16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline uint16_t F32ToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

// Converts n elements of a float tensor (F32, F16 or BF16) to fp32.
void ToF32(DType dtype, const void* src, float* dst, size_t n);

}  // namespace moe
