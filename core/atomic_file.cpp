#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

// Data must be on disk before the rename publishes it, or a crash could leave a whole-looking
// file with holes; a failed fsync (EIO, ENOSPC on delayed allocation) fails the write.
void SyncFile(const fs::path& file, const fs::path& target) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    std::error_code ignored;
    fs::remove(file, ignored);
    Fail(target.string(), std::string("cannot be written: ") + std::strerror(err));
  }
}

}  // namespace

void WriteFully(int fd, const void* data, size_t bytes, const std::string& where) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, std::min<size_t>(bytes, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    // A short write is followed by another, which reports why (ENOSPC, EIO).
    if (n < 0) Fail(where, std::string("cannot be written: ") + std::strerror(errno));
    if (n == 0) Fail(where, "cannot be written: the device accepts no more bytes");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

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
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) Fail(path.string(), "cannot create " + temp.string() + ": " + std::strerror(errno));
  try {
    WriteFully(fd, bytes.data(), bytes.size(), path.string());
  } catch (const Error&) {
    ::close(fd);
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    std::error_code ignored;
    fs::remove(temp, ignored);
    Fail(path.string(), std::string("cannot be written: ") + std::strerror(err));
  }
  SyncFile(temp, path);
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
  SyncFile(temp, to);
  RenameIntoPlace(temp, to);
}

PendingFile::PendingFile(const fs::path& path) : path_(path), temp_(TemporaryFor(path)) {
  CheckReplaceable(path_);
}

PendingFile::~PendingFile() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove(temp_, ignored);
}

void PendingFile::Commit() {
  SyncFile(temp_, path_);
  RenameIntoPlace(temp_, path_);
  committed_ = true;
}

}  // namespace moe
