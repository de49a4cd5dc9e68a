#include "core/model_loader.h"

#include <cstdlib>

#include "core/error.h"

namespace moe {

const Tokenizer& LoadedModel::RequireTokenizer() const {
  if (!tokenizer)
    Fail(dir.string(), "has no tokenizer.model or tokenizer.json; give token ids instead of text");
  return *tokenizer;
}

std::optional<WeightPages> ParseWeightPages(std::string_view name) {
  if (name == "mapped") return WeightPages::kMapped;
  if (name == "huge") return WeightPages::kHuge;
  if (name == "background") return WeightPages::kHugeBackground;
  return std::nullopt;
}

LoadedModel LoadModel(const std::filesystem::path& dir, const LoadOptions& options) {
  if (!std::filesystem::is_directory(dir)) Fail(dir.string(), "is not a model folder");
  LoadedModel m;
  m.dir = dir;
  ModelConfig config = ModelConfig::FromFile(dir / "config.json");
  m.checkpoint = std::make_unique<Checkpoint>(dir);
  if (options.weight_pages == WeightPages::kHuge) m.checkpoint->CopyIntoHugePages();
  ModelWeights weights =
      LoadModelWeights(*m.checkpoint, config,
                       options.allow_non_finite_weights ? ValueCheck::kNone : ValueCheck::kFinite);
  // After the check of every weight, which reads the files and would compete with the copy.
  if (options.weight_pages == WeightPages::kHugeBackground) m.checkpoint->StartCopyIntoHugePages();
  m.model = std::make_unique<MoeModel>(std::move(config), std::move(weights));
  // tokenizer.model when there is one, else tokenizer.json.
  m.tokenizer = OpenTokenizer(dir);
  if (m.tokenizer && m.tokenizer->vocab_size() > m.config().vocab_size)
    Fail((dir /
          (std::filesystem::exists(dir / "tokenizer.model") ? "tokenizer.model" : "tokenizer.json"))
             .string(),
         "has " + std::to_string(m.tokenizer->vocab_size()) +
             " pieces, more than the model's vocab_size " + std::to_string(m.config().vocab_size));
  return m;
}

std::filesystem::path DefaultModelDir() {
  if (const char* env = std::getenv("MOESCOPE_MODEL"); env != nullptr && *env != '\0') return env;
  return MOESCOPE_DEFAULT_MODEL_DIR;
}

}  // namespace moe
