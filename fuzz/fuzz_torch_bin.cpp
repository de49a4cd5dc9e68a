// torch.save checkpoints (core/torch_checkpoint over core/zip_archive and the restricted
// unpickler core/torch_pickle): any file must open cleanly or fail with moe::Error, and every
// tensor it accepts must lie inside the file.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/torch_checkpoint.h"
#include "core/torch_pickle.h"
#include "core/zip_archive.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moe::fuzz::InputFile input(".bin");
  try {
    moe::TorchCheckpointFile file(input.Write(data, size).string());
    for (const std::string& name : file.Names()) {
      const moe::TensorView view = file.Tensor(name);
      moe::fuzz::TouchBytes(view.data, view.nbytes());
    }
  } catch (const moe::Error&) {
  }
  // The two layers on their own too: the whole input as an archive, and as a pickle program (a
  // mutated data.pkl rarely survives inside a valid archive).
  try {
    if (moe::HasZipEndRecord(data, size)) {
      for (const auto& [name, entry] : moe::ReadZipEntries("input", data, size))
        moe::fuzz::TouchBytes(data + entry.data_offset, entry.size);
    }
  } catch (const moe::Error&) {
  }
  try {
    const moe::torch_pickle::Pickle pickle = moe::torch_pickle::Unpickle("input", data, size);
    moe::fuzz::TouchBytes(&pickle.at(pickle.root), sizeof(moe::torch_pickle::Value));
  } catch (const moe::Error&) {
  }
  return 0;
}
