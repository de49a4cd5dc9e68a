#pragma once
// PyTorch `torch.save` checkpoints (a zip archive holding `*/data.pkl` and `*/data/<key>`
// storages; core/zip_archive.h). The pickle is read by a restricted unpickler
// (core/torch_pickle.h) that understands only what torch.save emits for a state dict of tensors
// (OrderedDict, torch._utils._rebuild_tensor_v2, Float/Half/BFloat16 storages as persistent ids)
// and refuses every other global. No code runs.
//
// Memory stays bounded by what the file holds: a tensor saved as a non-contiguous view is copied
// to row-major only when Tensor() first asks for it, and a view that repeats storage elements
// (stride 0 as torch.expand makes, or other overlapping strides) into more elements than its
// storage holds is refused at open, so no tensor's copy is larger than its storage.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace moe {

class TorchCheckpointFile {
 public:
  explicit TorchCheckpointFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  MappedFile& file() { return *file_; }
  std::vector<std::string> Names() const;  // sorted
  bool Contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws Error "<path>: no tensor '<name>'" when absent. Thread-safe.
  TensorView Tensor(const std::string& name) const;

  // A tensor as the pickle describes it: `view.data` points at its first element in the mapped
  // storage; `stride` is empty when the view is row-major contiguous, else its strides in
  // elements.
  struct StoredTensor {
    TensorView view;
    Shape stride;
  };

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, StoredTensor> tensors_;
  // Row-major copies of the non-contiguous tensors asked for so far.
  mutable std::mutex copies_mutex_;
  mutable std::map<std::string, std::vector<uint8_t>> copies_;
};

}  // namespace moe
