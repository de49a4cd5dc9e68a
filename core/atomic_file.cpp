#include "core/atomic_file.h"

#include <unistd.h>

#include <fstream>
#include <system_error>

#include "core/error.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

fs::path TemporaryFor(const fs::path& path) {
  return path.string() + ".tmp-" + std::to_string(::getpid());
}

void RenameIntoPlace(const fs::path& temp, const fs::path& path) {
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    Fail(path.string(), "cannot rename " + temp.string() + " into place: " + ec.message());
  }
}

}  // namespace

void CheckReplaceable(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (ec || st.type() == fs::file_type::not_found || st.type() == fs::file_type::regular) return;
  const char* what = st.type() == fs::file_type::symlink     ? "a symbolic link"
                     : st.type() == fs::file_type::directory ? "a folder"
                     : st.type() == fs::file_type::fifo      ? "a FIFO"
                     : st.type() == fs::file_type::block || st.type() == fs::file_type::character
                         ? "a device"
                     : st.type() == fs::file_type::socket ? "a socket"
                                                          : "not a regular file";
  Fail(path.string(), std::string("is ") + what +
                          "; moescope writes its outputs over regular files only (choose another "
                          "path or remove it)");
}

void WriteFileAtomically(const fs::path& path, const std::string& bytes) {
  CheckReplaceable(path);
  const fs::path temp = TemporaryFor(path);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << bytes;
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      Fail(path.string(), "cannot be written");
    }
  }
  RenameIntoPlace(temp, path);
}

void CopyFileAtomically(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (fs::equivalent(from, to, ec)) return;
  CheckReplaceable(to);
  const fs::path temp = TemporaryFor(to);
  if (!fs::copy_file(from, temp, fs::copy_options::overwrite_existing, ec)) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    Fail(to.string(), "cannot copy from " + from.string() + ": " + ec.message());
  }
  RenameIntoPlace(temp, to);
}

}  // namespace moe
