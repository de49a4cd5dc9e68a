#include "core/convert.h"

#include <unistd.h>

#include <system_error>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors_file.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

// The files beside the weights that a model folder needs to be opened on its own.
constexpr const char* kCompanionFiles[] = {"config.json", "generation_config.json",
                                           "tokenizer.model", "tokenizer_config.json",
                                           "special_tokens_map.json"};

// Copies through a temporary name and renames, like WriteSafetensors, so a failed copy never
// leaves a truncated config behind.
void CopyFileAtomically(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (fs::equivalent(from, to, ec)) return;  // converting a folder in place
  const fs::path temp = to.string() + ".tmp-" + std::to_string(::getpid());
  if (!fs::copy_file(from, temp, fs::copy_options::overwrite_existing, ec)) {
    fs::remove(temp, ec);
    Fail(to.string(), "cannot copy from " + from.string() + ": " + ec.message());
  }
  fs::rename(temp, to, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    Fail(to.string(), "cannot rename " + temp.string() + " into place: " + ec.message());
  }
}

}  // namespace

void ConvertCheckpointToSafetensors(const fs::path& in_dir, const fs::path& out_dir) {
  const Checkpoint checkpoint(in_dir);

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) Fail(out_dir.string(), "cannot create folder: " + ec.message());

  std::vector<NamedView> tensors;
  for (const std::string& name : checkpoint.Names()) {
    tensors.push_back({name, *checkpoint.Find(name)});
  }
  WriteSafetensors((out_dir / "model.safetensors").string(), tensors, {{"format", "pt"}});

  for (const char* file : kCompanionFiles) {
    if (fs::exists(in_dir / file)) CopyFileAtomically(in_dir / file, out_dir / file);
  }
}

}  // namespace moe
