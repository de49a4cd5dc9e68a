#pragma once
// The portable random numbers of expert construction (tests/reference/split_reference.py):
// SplitMix64 streams keyed by (seed, stream, layer), the Fisher-Yates neuron permutation of the
// random split, and the N(0, 0.02) router initialisation. Everything here is bit-exact with the
// Python reference.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// Which stream of a layer a draw comes from.
enum class SplitStream : uint64_t {
  kPermutation = 1,  // random split
  kGate0 = 2,        // router gate_network.0.weight
  kGate2 = 3,        // router gate_network.2.weight
  kClustering = 4,   // balanced k-means initialisation
  kCoactivation = 5  // co-activation partition seeds
};

// SplitMix64 (Steele et al.; Vigna's reference code), state seeded as
// seed * 0x9E3779B97F4A7C15 + (stream << 32) + layer, all mod 2^64.
class SplitMix64 {
 public:
  SplitMix64(uint64_t seed, SplitStream stream, uint64_t layer)
      : state_(seed * kGolden + (static_cast<uint64_t>(stream) << 32) + layer) {}

  uint64_t Next() {
    state_ += kGolden;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  // Box-Muller from two uniforms (one value per two draws), computed in double.
  double Normal();

 private:
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  uint64_t state_;
};

// Expert sizes of a layer of `intermediate` neurons: all equal when E divides it; otherwise
// (allow_uneven only) the first intermediate % E experts get one neuron more. Throws Error
// naming `where` when E does not divide and uneven sizes are not allowed, or E > intermediate.
std::vector<int> ExpertSizes(int intermediate, int experts, bool allow_uneven,
                             const std::string& where);

// perm = [0..n); for i = n-1 down to 1: j = Next() % (i + 1); swap(perm[i], perm[j]).
std::vector<int> NeuronPermutation(int n, uint64_t seed, int layer);

// Expert e gets perm[offset_e : offset_e + sizes[e]], sorted ascending (upstream keeps the
// original neuron order inside an expert).
std::vector<std::vector<int>> RandomNeuronSplit(const std::vector<int>& sizes, uint64_t seed,
                                                int layer);

// rows x cols, row-major, each value std * Normal() from the stream (as float32, like the
// reference's np.float32 array of Python floats).
std::vector<float> NormalMatrix(int64_t rows, int64_t cols, uint64_t seed, SplitStream stream,
                                int layer, double std = 0.02);

}  // namespace moe
