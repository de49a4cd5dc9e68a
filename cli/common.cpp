#include "cli/common.h"

#include <iostream>

#include "core/error.h"
#include "core/linear.h"

namespace moe::cli {

int g_exit_code = 0;

void AddModelOptions(CLI::App& cmd, ModelOptions& options) {
  cmd.add_option("--model", options.model_dir,
                 "Model folder (config.json, safetensors or .bin, tokenizer.model); default: "
                 "$MOESCOPE_MODEL or the bundled model");
  cmd.add_option("--threads", options.threads, "Worker threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
}

void AddPolicyOptions(CLI::App& cmd, PolicySource& source, const std::string& top_k_flag) {
  cmd.add_option("--policy", source.file, "Routing policy JSON (see docs/engine.md)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--disable", source.disable, "Disable experts, LAYER:EXPERT,... (e.g. 3:5,3:7)");
  cmd.add_option("--mode", source.mode,
                 "How disabled experts are removed: reroute | drop | drop-renorm");
  cmd.add_option(top_k_flag, source.top_k, "Experts per token, LAYER:K,... ('*' = every layer)");
  cmd.add_option("--top-r", source.top_r,
                 "Drop each token's r best experts first, LAYER:R,... ('*' = every layer)");
}

LoadedModel OpenModel(const ModelOptions& options) {
  if (options.threads > 0) SetNumThreads(options.threads);
  return LoadModel(options.model_dir.empty() ? DefaultModelDir()
                                             : std::filesystem::path(options.model_dir));
}

int Guarded(const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const Error& e) {
    std::cerr << "moescope: error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "moescope: error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace moe::cli
