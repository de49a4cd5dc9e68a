#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace moe {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open: ") + std::strerror(errno));

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    Fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);

  // mmap rejects a zero length; an empty file simply has no bytes to point at.
  if (size_ > 0 && getenv("MOESCOPE_HUGE")) {
    const size_t huge = size_t(2) << 20;
    mapped_size_ = (size_ + huge - 1) / huge * huge + huge;
    void* p = ::mmap(nullptr, mapped_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t* base = static_cast<uint8_t*>(p);
    uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + huge - 1) / huge * huge);
    ::madvise(aligned, mapped_size_ - huge, MADV_HUGEPAGE);
    size_t done = 0;
    while (done < size_) {
      ssize_t got = ::pread(fd, aligned + done, size_ - done, done);
      if (got <= 0) break;
      done += got;
    }
    ::mprotect(aligned, mapped_size_ - huge, PROT_READ);
    map_base_ = base;
    data_ = aligned;
  } else if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      Fail(path, std::string("cannot memory-map: ") + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  // The mapping keeps the file alive; the descriptor is no longer needed.
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (map_base_ != nullptr) ::munmap(map_base_, mapped_size_);
  else if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace moe
