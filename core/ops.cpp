#include "core/ops.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

namespace moe {
namespace {

// One step of the vectorized loops: 16 floats, one AVX-512 register (two AVX2 ones).
using Lanes = Eigen::Array<float, 16, 1>;
using LanesMap = Eigen::Map<Lanes>;
using ConstLanesMap = Eigen::Map<const Lanes>;

}  // namespace

void RmsNorm(const float* x, int64_t rows, int64_t dim, const Vector& weight, float eps,
             float* out) {
  std::vector<float> w(static_cast<size_t>(dim));
  ToF32(weight.dtype, weight.data, w.data(), w.size());
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = out + r * dim;
    float sum = 0.0f;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * inv);
  }
}

void AddResidual(const float* branch, float multiplier, int64_t n, float* hidden) {
  if (multiplier == 1.0f) {
    for (int64_t i = 0; i < n; ++i) hidden[i] += branch[i];
  } else {
    for (int64_t i = 0; i < n; ++i) hidden[i] += multiplier * branch[i];
  }
}

void SiluMul(float* a, const float* b, int64_t n) {
  const int64_t steps = n / Lanes::SizeAtCompileTime;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t s = 0; s < steps; ++s) {
    LanesMap x(a + s * Lanes::SizeAtCompileTime);
    x = x / (1.0f + (-x).exp()) * ConstLanesMap(b + s * Lanes::SizeAtCompileTime);
  }
  for (int64_t i = steps * Lanes::SizeAtCompileTime; i < n; ++i)
    a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

void ExpShifted(float* x, int64_t n, float shift) {
  int64_t i = 0;
  for (; i + Lanes::SizeAtCompileTime <= n; i += Lanes::SizeAtCompileTime) {
    LanesMap v(x + i);
    v = (v - shift).exp();
  }
  for (; i < n; ++i) x[i] = std::exp(x[i] - shift);
}

void Softmax(float* x, int64_t n) {
  const float m = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace moe
