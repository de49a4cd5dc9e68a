// moescope info: what a model is, how big it is, and what one token costs.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/common.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model_summary.h"

namespace moe::cli {
namespace {

struct InfoOptions {
  ModelOptions model;
  std::string config_file;
};

// "6.74B (6740514816)", or "8.72M (8724224)" for models under a billion parameters.
std::string Billions(int64_t n) {
  char buf[64];
  const bool billions = n >= 1000000000;
  std::snprintf(buf, sizeof buf, "%.2f%s (%lld)", billions ? n / 1e9 : n / 1e6,
                billions ? "B" : "M", static_cast<long long>(n));
  return buf;
}

std::string Bytes(double b) {
  char buf[64];
  if (b >= 1 << 30)
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1 << 30));
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1 << 20));
  return buf;
}

void PrintInfo(const ModelConfig& c, const std::filesystem::path& dir) {
  std::cout << "model type      " << c.model_type << " (" << ArchitectureName(c.architecture)
            << ")\n"
            << "depth           " << c.num_hidden_layers << " layers\n"
            << "hidden          " << c.hidden_size << " (heads " << c.num_attention_heads
            << ", kv heads " << c.num_key_value_heads << ", head dim " << c.head_dim() << ")\n"
            << "attention       " << AttentionText(c) << "\n"
            << "vocabulary      " << c.vocab_size << "\n"
            << "context         " << c.context_length() << " (max_position_embeddings "
            << c.max_position_embeddings << ")\n"
            << "ffn width       " << c.intermediate_size << "\n";
  if (c.is_moe) {
    bool even = true;
    for (const auto& layer : c.size_experts)
      for (int s : layer) even = even && s == c.size_experts[0][0];
    std::cout << "experts         " << c.num_experts << " per layer, top-" << c.num_selects
              << ", sizes " << (even ? std::to_string(c.size_experts[0][0]) + " each" : "uneven")
              << "\n"
              << "router          " << RouterRecipeText(c) << "\n"
              << "shared expert   " << SharedExpertText(c) << "\n"
              << "layers          " << LayerKindsText(c) << "\n";
  } else {
    std::cout << "experts         none (dense LLaMA FFN)\n";
  }
  const int64_t total = c.TotalParameters(), active = c.ActivatedParameters();
  std::cout << "parameters      " << Billions(total) << " total, " << Billions(active)
            << " activated per token (embeddings and lm_head included)\n";
  if (std::filesystem::exists(dir / "model.safetensors") ||
      std::filesystem::exists(dir / "model.safetensors.index.json") ||
      std::filesystem::exists(dir / "pytorch_model.bin") ||
      std::filesystem::exists(dir / "pytorch_model.bin.index.json")) {
    const Checkpoint ck(dir);
    double bytes = 0;
    for (const std::string& name : ck.Names()) bytes += ck.Find(name)->nbytes();
    std::cout << "weights         " << Bytes(bytes) << " in " << ck.Files().size()
              << " file(s), memory-mapped\n";
  } else {
    std::cout << "weights         none in " << dir.string() << " (config only); bf16 would take "
              << Bytes(total * 2.0) << "\n";
  }
  const double kv_per_token =
      2.0 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim() * sizeof(float);
  std::cout << "kv cache        " << Bytes(kv_per_token * c.context_length())
            << " for a full context (" << kv_per_token / 1024 << " KiB per token, fp32)\n";
}

}  // namespace

void RegisterInfo(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Config summary, parameter counts and memory");
  AddModelOptions(*cmd, opts->model);
  cmd->add_option("--config", opts->config_file, "A config.json alone (no weights needed)");
  cmd->callback([opts] {
    g_exit_code = Guarded([&] {
      if (!opts->config_file.empty()) {
        const std::filesystem::path file(opts->config_file);
        PrintInfo(ModelConfig::FromFile(file), file.parent_path());
        return;
      }
      const std::filesystem::path dir = opts->model.model_dir.empty()
                                            ? DefaultModelDir()
                                            : std::filesystem::path(opts->model.model_dir);
      PrintInfo(ModelConfig::FromFile(dir / "config.json"), dir);
    });
  });
}

}  // namespace moe::cli
