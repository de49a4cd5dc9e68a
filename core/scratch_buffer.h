#pragma once
// Working memory reused across calls. Unlike std::vector::resize, growing it does not zero the
// new part, and shrinking keeps the memory: a layer that alternates between small and large
// calls (an expert's few tokens, then the lm_head's thousands) would otherwise clear, and
// page-fault in, tens of MiB per call.
//
// The memory is 64-byte aligned, whatever the allocator hands out: Eigen's vectorized products
// peel unaligned leading elements, so their rounding would otherwise depend on where the heap
// put a buffer, and two identical runs could differ in the last bit.
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace moe {

template <typename T>
class ScratchBuffer {
  static_assert(std::is_trivial_v<T>, "scratch memory is never constructed");
  static constexpr std::align_val_t kAlignment{64};

 public:
  // At least n elements, contents undefined.
  T* Get(size_t n) {
    if (n > capacity_) {
      data_.reset(static_cast<T*>(::operator new[](n * sizeof(T), kAlignment)));
      capacity_ = n;
    }
    return data_.get();
  }

 private:
  struct Release {
    void operator()(T* p) const { ::operator delete[](p, kAlignment); }
  };
  std::unique_ptr<T, Release> data_;
  size_t capacity_ = 0;
};

}  // namespace moe
