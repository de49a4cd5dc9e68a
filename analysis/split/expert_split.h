#pragma once
// `moescope split`: a dense Hugging Face LLaMA checkpoint → a LLaMA-MoE checkpoint
// (docs/llama-moe-spec.md §5, tests/reference/split_reference.py). Per layer the FFN's
// intermediate neurons are partitioned into E experts by one of three methods, each expert keeps
// its neurons in ascending original order, and the checkpoint is written as upstream's converter
// does (docs/llama-moe-spec.md §5.3):
//   model.layers.{l}.mlp.calculator.experts.weight_gate.{e} = gate_proj rows    [n_e, H]
//   model.layers.{l}.mlp.calculator.experts.weight_up.{e}   = up_proj rows      [n_e, H]
//   model.layers.{l}.mlp.calculator.experts.weight_down.{e} = down_proj columns [H, n_e]
//   model.layers.{l}.mlp.gate.gate_network.{0,2}.weight     = 0.02 · N(0, 1) from SplitMix64
//                                                             streams 2 and 3 of the layer
//   model.layers.{l}.mlp.gate.weight_noise.weight           = 0
// Everything else is copied unchanged (rotary inv_freq buffers are dropped); tensors keep the
// dense dtype. config.json is the reference's LlamaMoEConfig; split.json records the neurons.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moe {

enum class SplitMethod {
  kRandom,       // SplitMix64 permutation (bit-exact with the Python reference)
  kClustering,   // balanced k-means on L2-normalised neuron rows
  kCoactivation  // balanced partition of the neuron co-activation graph over a corpus
};
// The FFN matrix whose rows (clustering) or activation (co-activation) drive the split, as
// upstream's "template": up_proj (silu(gate x) ⊙ up x) or gate_proj (silu(gate x)).
enum class SplitMatrix { kUpProj, kGateProj };

const char* SplitMethodName(SplitMethod method);  // "random", "clustering", "coactivation"
const char* SplitMatrixName(SplitMatrix matrix);  // "up_proj", "gate_proj"
// Throw Error naming the flag for anything else.
SplitMethod ParseSplitMethod(const std::string& name);
SplitMatrix ParseSplitMatrix(const std::string& name);

struct ExpertSplitOptions {
  SplitMethod method = SplitMethod::kRandom;
  int experts = 0;  // E
  int top_k = 0;    // K <= E
  uint64_t seed = 0;
  std::optional<double> score_scale_factor;  // default E / K (docs/llama-moe-spec.md §5.4)
  bool multiply_gate_scores = true;
  bool allow_uneven = false;              // sizes I/E rounded, differing by at most one
  bool allow_non_finite_weights = false;  // LoadOptions::allow_non_finite_weights of dense_dir
  SplitMatrix matrix = SplitMatrix::kUpProj;
  std::vector<std::filesystem::path> calibration_corpus;   // --calibrate: per-layer factors
  std::vector<std::filesystem::path> coactivation_corpus;  // --corpus: co-activation only
  int kmeans_iterations = 500;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

struct ExpertSplitResult {
  std::vector<std::vector<std::vector<int>>> neurons;  // [layer][expert], ascending
  std::vector<std::vector<int>> sizes;                 // [layer][expert]
  std::vector<float> score_scale_factors;              // [layer] as written
  bool calibrated = false;
  std::string dtype;  // "F32", "BF16" or "F16": the dense FFN's and the output's
};

// Reads dense_dir, writes out_dir/{model.safetensors, config.json, split.json} and copies
// tokenizer and generation config files. Throws Error naming the file and field: a checkpoint
// that is not model_type "llama", E not dividing intermediate_size (without allow_uneven),
// K > E, a corpus file that does not exist, a corpus given to a method that does not read it.
ExpertSplitResult SplitDenseCheckpoint(const std::filesystem::path& dense_dir,
                                       const std::filesystem::path& out_dir,
                                       const ExpertSplitOptions& options);

}  // namespace moe
