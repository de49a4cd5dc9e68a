#pragma once
// Files that appear complete or not at all: written (or copied) under a temporary name beside
// the target, then renamed over it. A failure removes the temporary and throws Error naming the
// target.
#include <cstddef>
#include <filesystem>
#include <string>

namespace moe {

// Outputs replace regular files only: throws Error naming `path` when something else is there (a
// symlink, FIFO, device, socket or folder). Nothing there is fine. Every writer calls this before
// it creates or renames onto its target.
void CheckReplaceable(const std::filesystem::path& path);

// Writes all `bytes` to `fd` (retrying short writes); throws Error naming `where` with the
// system's reason (ENOSPC, EIO) when the device refuses.
void WriteFully(int fd, const void* data, size_t bytes, const std::string& where);

// Written with POSIX calls and fsync'd before the rename.
void WriteFileAtomically(const std::filesystem::path& path, const std::string& bytes);
// Copying a file onto itself (the same inode) does nothing.
void CopyFileAtomically(const std::filesystem::path& from, const std::filesystem::path& to);

// For writers that need a path to write to (HDF5): they write temp(), and Commit() puts it in
// place; destroyed uncommitted (an error on the way), the temporary is removed and whatever was
// at the path before is untouched.
class PendingFile {
 public:
  explicit PendingFile(const std::filesystem::path& path);  // CheckReplaceable(path) first
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  const std::filesystem::path& temp() const { return temp_; }
  void Commit();

 private:
  std::filesystem::path path_, temp_;
  bool committed_ = false;
};

}  // namespace moe
