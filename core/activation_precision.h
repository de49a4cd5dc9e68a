#pragma once
// How fp32 activations meet bf16 weights in GEMMs (core/bf16_matmul.h). kF32 (the default) keeps
// fp32 accuracy; kBF16 rounds the activations to bf16 as PyTorch's bf16 runs do, for about twice
// the speed. Process-wide, like the thread count. Shared by core/linear.h, which reads it for
// every product, and core/bf16_matmul.h, which takes it as an argument; neither includes the
// other's header for it.
namespace moe {

enum class ActivationPrecision { kF32, kBF16 };
void SetActivationPrecision(ActivationPrecision precision);
ActivationPrecision GetActivationPrecision();

// Sets the precision for the lifetime of the object and restores the previous one after.
class ScopedActivationPrecision {
 public:
  explicit ScopedActivationPrecision(ActivationPrecision precision)
      : saved_(GetActivationPrecision()) {
    SetActivationPrecision(precision);
  }
  ~ScopedActivationPrecision() { SetActivationPrecision(saved_); }
  ScopedActivationPrecision(const ScopedActivationPrecision&) = delete;
  ScopedActivationPrecision& operator=(const ScopedActivationPrecision&) = delete;

 private:
  ActivationPrecision saved_;
};

}  // namespace moe
