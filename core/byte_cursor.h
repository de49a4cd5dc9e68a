#pragma once
// Bounds-checked little-endian reads from a byte range (the zip reader, the unpickler); running
// off the end is an Error whose message says what was being read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "core/error.h"

namespace moe {

class ByteCursor {
 public:
  ByteCursor(const uint8_t* data, size_t size, size_t pos, std::string where)
      : data_(data), size_(size), pos_(pos), where_(std::move(where)) {}

  size_t pos() const { return pos_; }
  bool AtEnd() const { return pos_ >= size_; }

  const uint8_t* Take(size_t n) {
    if (pos_ > size_ || n > size_ - pos_) FailAbout(where_, "runs past the end");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t Uint(size_t n) {
    const uint8_t* p = Take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Uint(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Uint(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  uint64_t U64() { return Uint(8); }
  std::string String(size_t n) {
    const uint8_t* p = Take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  std::string where_;
};

}  // namespace moe
