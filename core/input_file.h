#pragma once
// Files a user names as input (config.json, a policy, a corpus, tokenizer.model): checked to be a
// regular file before they are opened, so a folder or a missing path is an Error naming the path
// rather than a stream error from deep inside a reader.
#include <filesystem>
#include <string>

namespace moe {

// Throws Error "<path>: does not exist" / "is a folder, expected <what>" / "is not a regular
// file".
void CheckInputFile(const std::filesystem::path& path, const std::string& what);

// The whole file; a file too large to hold in memory is an Error naming it (not bad_alloc).
std::string ReadInputFile(const std::filesystem::path& path, const std::string& what);

}  // namespace moe
