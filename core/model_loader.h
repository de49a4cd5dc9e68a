#pragma once
// Opens a Hugging Face model folder: config.json, the checkpoint, and tokenizer.model if any.
#include <filesystem>
#include <memory>

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

struct LoadOptions {
  // Copy the weights into 2 MiB pages (Checkpoint::CopyIntoHugePages) instead of reading them in
  // place from the page cache: decoding a large model runs faster, loading takes a copy.
  bool huge_pages = false;
  // Load weights holding NaN or infinity instead of refusing them (for debugging a broken
  // checkpoint: such weights give NaN outputs).
  bool allow_non_finite_weights = false;
};

LoadedModel LoadModel(const std::filesystem::path& dir, const LoadOptions& options = {});

// $MOESCOPE_MODEL if set, else the model bundled with moescope.
std::filesystem::path DefaultModelDir();

}  // namespace moe
