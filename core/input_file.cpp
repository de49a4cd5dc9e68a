#include "core/input_file.h"

#include <fstream>
#include <new>
#include <sstream>
#include <system_error>

#include "core/error.h"

namespace moe {

void CheckInputFile(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) Fail(path.string(), "does not exist");
  if (std::filesystem::is_directory(status)) Fail(path.string(), "is a folder, expected " + what);
  if (!std::filesystem::is_regular_file(status))
    Fail(path.string(), "is not a regular file, expected " + what);
}

std::string ReadInputFile(const std::filesystem::path& path, const std::string& what) {
  CheckInputFile(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path.string(), "cannot be opened");
  try {
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) Fail(path.string(), "read error");
    return std::move(text).str();
  } catch (const std::bad_alloc&) {
    Fail(path.string(), "is too large to read into memory");
  }
}

}  // namespace moe
