#pragma once
// The safetensors container: 8-byte header length, JSON header, tensor bytes.
// Reading validates the whole header up front (offsets inside the file, no overlaps, sizes
// that match dtype x shape), so a bad file fails at open with the file and tensor named.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace moe {

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  MappedFile& file() { return *file_; }
  std::vector<std::string> Names() const;  // sorted
  bool Contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws Error "<path>: no tensor '<name>'" when absent.
  TensorView Tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (in the given order) to `path` through a temporary file in the same folder
// that is renamed into place only when complete, so a failure never leaves a half file.
struct NamedView {
  std::string name;
  TensorView view;
};
void WriteSafetensors(const std::string& path, const std::vector<NamedView>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void WriteSafetensors(const std::string& path, const std::vector<OwnedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace moe
