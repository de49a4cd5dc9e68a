#pragma once
// All tensors of a Hugging Face model folder, whatever the file layout:
//   model.safetensors | model.safetensors.index.json (+ shards) |
//   pytorch_model.bin | pytorch_model.bin.index.json (+ shards).
// Safetensors is preferred when both exist.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe {

class MappedFile;
class SafetensorsFile;
class TorchCheckpointFile;

// What loading checks of a tensor's values (dtype and shape are always checked).
enum class ValueCheck {
  kNone,
  kFinite,  // no NaN or infinity (Checkpoint::RequireFinite)
};

class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& dir);
  ~Checkpoint();
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;

  const std::filesystem::path& dir() const { return dir_; }
  std::vector<std::string> Names() const;  // sorted, all shards
  bool Contains(const std::string& name) const;
  // The file holding `name` (for messages), or "" if absent.
  std::string FileOf(const std::string& name) const;
  std::optional<TensorView> Find(const std::string& name) const;

  // A float tensor (F32/F16/BF16) with exactly this shape. Errors name the file, the tensor,
  // and the expected and actual shape or dtype, e.g.
  // "model.safetensors: tensor 'model.norm.weight' has shape [63], expected [64]".
  TensorView Require(const std::string& name, const Shape& shape) const;

  // Checks that the named tensors hold no NaN or infinity (core/finite_check.h), all in one
  // parallel scan; the error names the file, the tensor and the element, e.g.
  // "model.safetensors: tensor 'w' holds NaN at element 123".
  void RequireFinite(const std::vector<std::string>& names) const;

  // Files the checkpoint was read from, relative to dir (for hashing and messages).
  std::vector<std::string> Files() const;

  // Copies every file into memory backed by 2 MiB pages (MappedFile::CopyIntoHugePages); tensor
  // views keep pointing at the same bytes.
  void CopyIntoHugePages();
  // The same copy on one background thread, file after file, a stretch at a time, while the
  // model is used (MappedFile::CopyIntoHugePages(stop)). The destructor stops and joins it.
  void StartCopyIntoHugePages();
  // Waits for the background copy to end; returns its first error, or "" (a failed copy leaves
  // the rest of the weights mapped from the files: slower, the same bytes).
  std::string WaitForCopy();
  // Bytes of the checkpoint's files held in huge pages so far, and in all.
  size_t copied_bytes() const;
  size_t total_bytes() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> safetensors_;
  std::vector<std::unique_ptr<TorchCheckpointFile>> torch_files_;
  struct Location {
    int file;  // index into safetensors_ or torch_files_
    bool is_torch;
  };
  std::map<std::string, Location> index_;
  std::vector<std::string> files_;        // relative to dir_, in the order they were read
  std::string source_;                    // the file or index that names every tensor, for messages
  struct BackgroundCopy;                  // a thread copying the files into huge pages
  std::unique_ptr<BackgroundCopy> copy_;  // null unless StartCopyIntoHugePages was called

  std::vector<MappedFile*> MappedFiles() const;  // every file the checkpoint maps
  void OpenSingle(const std::string& file, bool is_torch);
  void OpenIndex(const std::string& index_file, bool is_torch);
  TensorView View(const Location& at, const std::string& name) const;
  std::string TensorWhere(const Location& at, const std::string& name) const;
  std::string FilePath(const Location& at) const;
};

}  // namespace moe
