// moescope convert: a PyTorch .bin (or sharded) checkpoint folder to one model.safetensors.
#include <iostream>

#include "cli/common.h"
#include "core/convert.h"
#include "core/error.h"

namespace moe::cli {

void RegisterConvert(CLI::App& app) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("convert", "Write model.safetensors from any checkpoint");
  cmd->add_option("input", *in, "Model folder to read")->required();
  cmd->add_option("output", *out, "Folder to write (config and tokenizer are copied)")->required();
  cmd->add_option("--dtype", *dtype, "Store floating-point tensors as F32, F16 or BF16");
  cmd->callback([in, out, dtype] {
    g_exit_code = Guarded([&] {
      std::optional<DType> as;
      if (!dtype->empty()) {
        as = ParseDType(*dtype);
        if (!as) Fail("--dtype", "is '" + *dtype + "', expected F32, F16 or BF16");
      }
      ConvertCheckpointToSafetensors(*in, *out, as);
      std::cerr << "wrote " << (std::filesystem::path(*out) / "model.safetensors").string() << "\n";
    });
  });
}

}  // namespace moe::cli
