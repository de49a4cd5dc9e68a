// MatMulTransposed against a double-precision product of the same numbers: the bf16 GEMM path
// (oneDNN, core/bf16_matmul.cpp) in both activation precisions, the streaming path decoding uses
// (up to 8 rows, every dtype), the f16 GEMM path and OpenBLAS for f32.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "core/bf16_matmul.h"
#include "core/linear.h"
#include "core/tensor.h"

namespace {

struct Case {
  int64_t rows, n, k;
};

struct Weights {
  std::vector<uint16_t> bits;  // 16-bit dtypes
  std::vector<float> values;   // the numbers as fp32 (the weights themselves for F32)
  moe::Matrix matrix;
};

Weights RandomWeights(moe::DType dtype, int64_t n, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  Weights w;
  w.values.resize(static_cast<size_t>(n * k));
  if (dtype != moe::DType::kF32) w.bits.resize(w.values.size());
  for (size_t i = 0; i < w.values.size(); ++i) {
    const float v = dist(rng);
    if (dtype == moe::DType::kF32) {
      w.values[i] = v;
    } else {
      w.bits[i] = dtype == moe::DType::kBF16 ? moe::F32ToBF16(v) : moe::F32ToF16(v);
      w.values[i] =
          dtype == moe::DType::kBF16 ? moe::BF16ToF32(w.bits[i]) : moe::F16ToF32(w.bits[i]);
    }
  }
  w.matrix.dtype = dtype;
  w.matrix.rows = n;
  w.matrix.cols = k;
  w.matrix.data = dtype == moe::DType::kF32 ? static_cast<const void*>(w.values.data())
                                            : static_cast<const void*>(w.bits.data());
  return w;
}

// Largest |y - exact| / Σ|x||w| over all outputs (the error relative to the product's scale).
double WorstRelativeError(const std::vector<float>& x, const Weights& w, const Case& c,
                          const std::vector<float>& y, const std::vector<float>& y0) {
  double worst = 0.0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t o = 0; o < c.n; ++o) {
      double exact = y0[r * c.n + o], scale = 0.0;
      for (int64_t i = 0; i < c.k; ++i) {
        exact += static_cast<double>(x[r * c.k + i]) * w.values[o * c.k + i];
        scale += std::fabs(static_cast<double>(x[r * c.k + i]) * w.values[o * c.k + i]);
      }
      worst = std::max(worst, std::fabs(y[r * c.n + o] - exact) / scale);
    }
  }
  return worst;
}

double RunCase(moe::DType dtype, const Case& c, bool accumulate, std::mt19937& rng) {
  const Weights w = RandomWeights(dtype, c.n, c.k, rng);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(c.rows * c.k)), y(static_cast<size_t>(c.rows * c.n));
  for (float& v : x) v = dist(rng);
  std::vector<float> y0(y.size(), 0.0f);
  if (accumulate)
    for (float& v : y0) v = dist(rng);
  y = y0;
  moe::MatMulTransposed(x.data(), c.rows, w.matrix, y.data(), accumulate);
  return WorstRelativeError(x, w, c, y, y0);
}

// Row counts on both sides of the matrix-vector/GEMM switch and of the 16-row padding.
const std::vector<Case> kCases = {{1, 64, 256},  {5, 37, 100},  {9, 64, 256},
                                  {17, 300, 37}, {100, 7, 512}, {64, 352, 1024}};

}  // namespace

TEST_CASE("bf16 weights with fp32 activations match the exact product to fp32 accuracy",
          "[linear]") {
  // On the bf16 units (oneDNN) where the CPU has them, else widened for sgemm: fp32 accuracy both.
  INFO("bf16 units: " << moe::Bf16MatMulAvailable());
  moe::ScopedActivationPrecision scope(moe::ActivationPrecision::kF32);
  std::mt19937 rng(7);
  for (const Case& c : kCases) {
    for (bool accumulate : {false, true}) {
      INFO("rows " << c.rows << " n " << c.n << " k " << c.k << " accumulate " << accumulate);
      // hi + lo leaves each input off by at most 2^-17 (7.6e-6) of itself.
      CHECK(RunCase(moe::DType::kBF16, c, accumulate, rng) < 1e-5);
    }
  }
}

TEST_CASE("bf16 activations round the GEMM inputs to bf16, and only GEMM inputs", "[linear]") {
  moe::ScopedActivationPrecision scope(moe::ActivationPrecision::kBF16);
  std::mt19937 rng(11);
  for (const Case& c : kCases) {
    INFO("rows " << c.rows << " n " << c.n << " k " << c.k);
    const double err = RunCase(moe::DType::kBF16, c, /*accumulate=*/true, rng);
    // bf16 keeps 8 significant bits: each input is off by at most 2^-9 of itself.
    CHECK(err < 1.0 / 512);
    // GEMMs (more than 8 rows) must show that rounding; matrix-vector products stay fp32.
    if (c.rows > 8)
      CHECK(err > 5e-5);
    else
      CHECK(err < 1e-5);
  }
}

TEST_CASE("f16 and f32 weights match the exact product to fp32 accuracy", "[linear]") {
  std::mt19937 rng(3);
  for (const moe::DType dtype : {moe::DType::kF16, moe::DType::kF32}) {
    for (const Case& c : kCases) {
      for (bool accumulate : {false, true}) {
        INFO(moe::DTypeName(dtype)
             << " rows " << c.rows << " n " << c.n << " k " << c.k << " accumulate " << accumulate);
        CHECK(RunCase(dtype, c, accumulate, rng) < 1e-5);
      }
    }
  }
}

TEST_CASE("several products in one pass equal the products made one by one", "[linear]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const auto random_vector = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
  };
  for (const moe::DType dtype : {moe::DType::kBF16, moe::DType::kF16, moe::DType::kF32}) {
    // Decoding (1 row) streams; 12 rows take the GEMM path. Widths 96 and 64 are not shared, so
    // the last product's width forces each to run on its own.
    for (const int64_t rows : {1, 3, 12}) {
      for (const int64_t last_width : {96, 64}) {
        INFO(moe::DTypeName(dtype) << " rows " << rows << " last width " << last_width);
        std::vector<Weights> w;
        w.push_back(RandomWeights(dtype, 200, 96, rng));
        w.push_back(RandomWeights(dtype, 33, 96, rng));
        w.push_back(RandomWeights(dtype, 70, last_width, rng));
        const std::vector<float> shared = random_vector(rows * 96);
        const std::vector<float> own = random_vector(rows * last_width);
        std::vector<std::vector<float>> together, alone;
        for (const Weights& m : w) {
          together.emplace_back(static_cast<size_t>(rows * m.matrix.rows));
          alone.emplace_back(static_cast<size_t>(rows * m.matrix.rows));
        }
        const std::vector<moe::MatMulTarget> targets = {
            {&w[0].matrix, together[0].data()},
            {&w[1].matrix, together[1].data()},
            {&w[2].matrix, together[2].data(), own.data()}};
        moe::MatMulTransposedMany(shared.data(), rows, targets);
        moe::MatMulTransposed(shared.data(), rows, w[0].matrix, alone[0].data());
        moe::MatMulTransposed(shared.data(), rows, w[1].matrix, alone[1].data());
        moe::MatMulTransposed(own.data(), rows, w[2].matrix, alone[2].data());
        for (size_t j = 0; j < w.size(); ++j) CHECK(together[j] == alone[j]);
      }
    }
  }
}
