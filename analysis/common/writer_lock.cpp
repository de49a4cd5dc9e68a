#include "analysis/common/writer_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace moe {

WriterLock WriterLock::Acquire(const std::filesystem::path& path) {
  const std::string p = path.string();
  WriterLock lock;
  // O_NOFOLLOW: outputs replace regular files only (CheckReplaceable runs first; this closes
  // the gap between that check and the open).
  lock.fd_ = ::open(p.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (lock.fd_ < 0 && errno == ENOENT) {
    lock.fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    lock.created_ = lock.fd_ >= 0;
    // Another writer created it between the two opens: open what it made and contend for it.
    if (lock.fd_ < 0 && errno == EEXIST)
      lock.fd_ = ::open(p.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  }
  if (lock.fd_ < 0) Fail(p, std::string("cannot be opened for writing: ") + std::strerror(errno));
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file, however long it grows
  if (::fcntl(lock.fd_, F_OFD_SETLK, &whole) != 0) {
    const int err = errno;
    const bool busy = err == EAGAIN || err == EACCES;
    lock.created_ = false;  // not ours to remove
    lock.Release();
    if (busy)
      Fail(p,
           "is being written by another process; wait for it to finish or choose another "
           "output path");
    Fail(p, std::string("cannot be locked for writing: ") + std::strerror(err));
  }
  return lock;
}

WriterLock::WriterLock(WriterLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), created_(std::exchange(other.created_, false)) {}

WriterLock& WriterLock::operator=(WriterLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
    created_ = std::exchange(other.created_, false);
  }
  return *this;
}

void WriterLock::Release() {
  // Closing the descriptor releases its OFD lock.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace moe
