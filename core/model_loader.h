#pragma once
// Opens a Hugging Face model folder: config.json, the checkpoint, and tokenizer.model if any.
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/moe_model.h"
#include "core/tokenizer.h"

namespace moe {

struct LoadedModel {
  std::filesystem::path dir;
  std::unique_ptr<Checkpoint> checkpoint;  // owns the mapped weights the model points into
  std::unique_ptr<MoeModel> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has no tokenizer.model

  const ModelConfig& config() const { return model->config(); }
  // Throws Error naming the folder when it has no tokenizer.model.
  const Tokenizer& RequireTokenizer() const;
};

// Where the weights are read from. Decoding reads every weight once per token; from the page
// cache's 4 KiB pages a large model's step spends much of its time in TLB misses, from a copy in
// 2 MiB pages it does not, but the copy takes time and memory (docs/performance.md).
enum class WeightPages {
  kMapped,          // in place from the file mapping: loads at once
  kHuge,            // copied into 2 MiB pages before LoadModel returns
  kHugeBackground,  // copied into 2 MiB pages by a background thread while the model runs
};

// "mapped", "huge" or "background" (the command-line names), or nullopt.
std::optional<WeightPages> ParseWeightPages(std::string_view name);

struct LoadOptions {
  WeightPages weight_pages = WeightPages::kMapped;
  // Load weights holding NaN or infinity instead of refusing them (for debugging a broken
  // checkpoint: such weights give NaN outputs).
  bool allow_non_finite_weights = false;
};

LoadedModel LoadModel(const std::filesystem::path& dir, const LoadOptions& options = {});

// $MOESCOPE_MODEL if set, else the model bundled with moescope.
std::filesystem::path DefaultModelDir();

}  // namespace moe
