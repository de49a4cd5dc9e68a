#include "core/tensor.h"

#include "core/error.h"

namespace moe {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI64:
      return 8;
    case DType::kU8:
      return 1;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
    case DType::kI16:
      return "I16";
    case DType::kU8:
      return "U8";
  }
  return "?";
}

std::optional<DType> ParseDType(std::string_view name) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kI16,
                  DType::kU8}) {
    if (name == DTypeName(d)) return d;
  }
  return std::nullopt;
}

std::string ShapeString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

OwnedTensor MakeTensor(std::string name, DType dtype, Shape shape, const void* values) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.resize(t.view().nbytes());
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), values, t.bytes.size());
  return t;
}

}  // namespace

OwnedTensor MakeF32Tensor(std::string name, Shape shape, const float* values) {
  return MakeTensor(std::move(name), DType::kF32, std::move(shape), values);
}

OwnedTensor MakeI32Tensor(std::string name, Shape shape, const int32_t* values) {
  return MakeTensor(std::move(name), DType::kI32, std::move(shape), values);
}

// IEEE binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf or NaN (payload kept)
  } else if (exponent != 0) {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: every one is a normal float, so shift the leading 1 into the implicit bit.
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;

  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN stays a (quiet) NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65536 (or is inf): inf
  if (abs >= 0x38800000u) {
    // Normal half. Rebias the exponent, then round the 13 dropped bits to nearest even; a carry
    // out of the mantissa correctly bumps the exponent.
    uint32_t h = ((abs - (112u << 23)) >> 13);
    const uint32_t dropped = abs & 0x1fffu;
    if (dropped > 0x1000u || (dropped == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: value = m * 2^-24 with m < 1024; shift the full 24-bit significand into place.
  const uint32_t exponent = abs >> 23;
  const uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // 14..24
  uint32_t h = significand >> shift;
  const uint32_t dropped = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (dropped > half || (dropped == half && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

void ToF32(DType dtype, const void* src, float* dst, size_t n) {
  switch (dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, n * sizeof(float));
      return;
    // 16-bit elements are read with memcpy: a checkpoint's data may start at an odd offset.
    case DType::kF16: {
      const auto* bytes = static_cast<const unsigned char*>(src);
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, sizeof(h));
        dst[i] = F16ToF32(h);
      }
      return;
    }
    case DType::kBF16: {
      const auto* bytes = static_cast<const unsigned char*>(src);
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, sizeof(h));
        dst[i] = BF16ToF32(h);
      }
      return;
    }
    default:
      throw Error(std::string("ToF32: dtype ") + DTypeName(dtype) + " is not a float type");
  }
}

}  // namespace moe
