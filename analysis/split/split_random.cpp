#include "analysis/split/split_random.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "core/error.h"

namespace moe {

double SplitMix64::Normal() {
  const double u1 = Uniform();
  const double u2 = Uniform();
  // The same operations in the same order as the Python reference:
  // sqrt(-2 ln(1 - u1)) * cos(2 pi u2).
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::vector<int> ExpertSizes(int intermediate, int experts, bool allow_uneven,
                             const std::string& where) {
  if (experts < 1) Fail("--experts", "must be at least 1, got " + std::to_string(experts));
  if (experts > intermediate)
    Fail(where, "intermediate_size " + std::to_string(intermediate) + " is smaller than " +
                    std::to_string(experts) + " experts");
  const int base = intermediate / experts, extra = intermediate % experts;
  if (extra != 0 && !allow_uneven)
    Fail(where, "intermediate_size " + std::to_string(intermediate) + " is not divisible by " +
                    std::to_string(experts) +
                    " experts (pass --allow-uneven for sizes that differ by at most one)");
  std::vector<int> sizes(static_cast<size_t>(experts), base);
  for (int e = 0; e < extra; ++e) ++sizes[static_cast<size_t>(e)];
  return sizes;
}

std::vector<int> NeuronPermutation(int n, uint64_t seed, int layer) {
  SplitMix64 rng(seed, SplitStream::kPermutation, static_cast<uint64_t>(layer));
  std::vector<int> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  for (int i = n - 1; i > 0; --i) {
    const uint64_t j = rng.Next() % static_cast<uint64_t>(i + 1);
    std::swap(perm[static_cast<size_t>(i)], perm[j]);
  }
  return perm;
}

std::vector<std::vector<int>> RandomNeuronSplit(const std::vector<int>& sizes, uint64_t seed,
                                                int layer) {
  const int n = std::accumulate(sizes.begin(), sizes.end(), 0);
  const std::vector<int> perm = NeuronPermutation(n, seed, layer);
  std::vector<std::vector<int>> lists;
  auto at = perm.begin();
  for (int size : sizes) {
    std::vector<int> list(at, at + size);
    std::sort(list.begin(), list.end());
    lists.push_back(std::move(list));
    at += size;
  }
  return lists;
}

std::vector<float> NormalMatrix(int64_t rows, int64_t cols, uint64_t seed, SplitStream stream,
                                int layer, double std) {
  SplitMix64 rng(seed, stream, static_cast<uint64_t>(layer));
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (float& v : out) v = static_cast<float>(std * rng.Normal());
  return out;
}

}  // namespace moe
