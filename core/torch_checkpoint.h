#pragma once
// PyTorch `torch.save` checkpoints (a zip archive holding `*/data.pkl` and `*/data/<key>`
// storages; core/zip_archive.h). The pickle is read by a restricted unpickler
// (core/torch_pickle.h) that understands only what torch.save emits for a state dict of tensors
// (OrderedDict, torch._utils._rebuild_tensor_v2, Float/Half/BFloat16 storages as persistent ids)
// and refuses every other global. No code runs.
#include <map>
#include <memory>
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
  TensorView Tensor(const std::string& name) const;

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  // Non-contiguous tensors (strided views of a shared storage) are copied here.
  std::vector<std::vector<uint8_t>> copies_;
};

}  // namespace moe
