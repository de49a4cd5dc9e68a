#pragma once
// IEEE binary16 conversion for the router logits a trace stores as float16 (numpy's float16).
#include <cstdint>
#include <cstring>

namespace moe {

// Round to nearest, ties to even; overflow gives ±inf, NaN stays NaN, tiny values become
// subnormals or ±0.
inline uint16_t FloatToHalf(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or NaN (keep a quiet NaN bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {               // below the smallest normal half: subnormal or zero
    if (abs < 0x33000000u) return sign;  // under half the smallest subnormal
    const uint32_t mantissa = (abs & 0x007fffffu) | 0x00800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    const uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u), midpoint = 1u << (shift - 1);
    const uint32_t rounded = half + (rest > midpoint || (rest == midpoint && (half & 1u)));
    return static_cast<uint16_t>(sign | rounded);
  }
  const uint32_t rebased = abs - 0x38000000u;  // exponent bias 127 -> 15
  const uint32_t half = rebased >> 13, rest = rebased & 0x1fffu;
  const uint32_t rounded = half + (rest > 0x1000u || (rest == 0x1000u && (half & 1u)));
  return static_cast<uint16_t>(sign | rounded);
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t x;
  if (exponent == 0x1f) {
    x = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    x = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    x = sign;
  } else {  // subnormal: value = mantissa * 2^-24
    float f = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    std::memcpy(&x, &f, sizeof(x));
    x |= sign;
  }
  float out;
  std::memcpy(&out, &x, sizeof(out));
  return out;
}

}  // namespace moe
