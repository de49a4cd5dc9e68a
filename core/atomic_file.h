#pragma once
// Files that appear complete or not at all: written (or copied) under a temporary name beside
// the target, then renamed over it. A failure removes the temporary and throws Error naming the
// target.
#include <filesystem>
#include <string>

namespace moe {

// Outputs replace regular files only: throws Error naming `path` when something else is there (a
// symlink, FIFO, device, socket or folder). Nothing there is fine. Every writer calls this before
// it creates or renames onto its target.
void CheckReplaceable(const std::filesystem::path& path);

void WriteFileAtomically(const std::filesystem::path& path, const std::string& bytes);
// Copying a file onto itself (the same inode) does nothing.
void CopyFileAtomically(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace moe
