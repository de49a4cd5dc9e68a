#pragma once
// Files that appear complete or not at all: written (or copied) under a temporary name beside
// the target, then renamed over it. A failure removes the temporary and throws Error naming the
// target.
#include <filesystem>
#include <string>

namespace moe {

void WriteFileAtomically(const std::filesystem::path& path, const std::string& bytes);
// Copying a file onto itself (the same inode) does nothing.
void CopyFileAtomically(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace moe
