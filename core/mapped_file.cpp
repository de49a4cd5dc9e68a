#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace moe {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

// An inaccessible stretch of `length` bytes of address space starting on a 2 MiB boundary. The
// slack around it is released; MAP_FIXED mappings then take its place.
uint8_t* ReserveAligned(size_t length) {
  void* p = ::mmap(nullptr, length + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* base = static_cast<uint8_t*>(p);
  auto* aligned = reinterpret_cast<uint8_t*>(RoundUp(reinterpret_cast<uintptr_t>(base), kHugePage));
  if (aligned > base) ::munmap(base, static_cast<size_t>(aligned - base));
  const size_t tail = static_cast<size_t>(base + length + kHugePage - (aligned + length));
  if (tail > 0) ::munmap(aligned + length, tail);
  return aligned;
}

std::string ErrnoText(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, ErrnoText("cannot open", errno));

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    Fail(path, ErrnoText("cannot stat", err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);

  // mmap rejects a zero length; an empty file simply has no bytes to point at.
  if (size_ > 0) {
    uint8_t* at = ReserveAligned(RoundUp(size_, kPage));
    void* p =
        at == nullptr ? MAP_FAILED : ::mmap(at, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      if (at != nullptr) ::munmap(at, RoundUp(size_, kPage));
      ::close(fd);
      Fail(path, ErrnoText("cannot memory-map", err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  // The mapping keeps the file alive; the descriptor is no longer needed.
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), RoundUp(size_, kPage));
}

int MappedFile::OpenForCopy() const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path_, ErrnoText("cannot reopen to copy into huge pages", errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != size_) {
    ::close(fd);
    Fail(path_, "changed size since it was opened; not copied into huge pages");
  }
  return fd;
}

std::string MappedFile::CopyStretch(int fd, size_t at) {
  const size_t end = std::min(size_, at + kCopyStretch);
  const size_t length = RoundUp(end - at, kPage);  // the file mapping's pages of this stretch
  uint8_t* copy = ReserveAligned(length);
  if (copy == nullptr || ::mprotect(copy, length, PROT_READ | PROT_WRITE) != 0) {
    const int err = errno;
    if (copy != nullptr) ::munmap(copy, length);
    return ErrnoText("cannot reserve memory to copy the weights into huge pages", err);
  }
  // Only advice: where the kernel has no huge pages to give, the copy still works, in 4 KiB pages.
  ::madvise(copy, length, MADV_HUGEPAGE);
  for (size_t done = 0; at + done < end;) {
    const ssize_t got = ::pread(fd, copy + done, end - at - done, static_cast<off_t>(at + done));
    if (got > 0) {
      done += static_cast<size_t>(got);
    } else if (!(got < 0 && errno == EINTR)) {
      const int err = got < 0 ? errno : EIO;
      ::munmap(copy, length);
      return ErrnoText("cannot read while copying into huge pages", err);
    }
  }
  // The copy takes this stretch of the file mapping's place in one step (the kernel holds the
  // address space's lock meanwhile, so a reader sees the file's page or the copy, never a hole):
  // every pointer into data_ stays valid and reads the same bytes.
  ::mprotect(copy, length, PROT_READ);
  void* moved = ::mremap(copy, length, length, MREMAP_MAYMOVE | MREMAP_FIXED,
                         const_cast<uint8_t*>(data_) + at);
  if (moved == MAP_FAILED) {
    const int err = errno;
    ::munmap(copy, length);
    return ErrnoText("cannot move the copy into place", err);
  }
  copied_bytes_.fetch_add(end - at);
  return {};
}

void MappedFile::CopyIntoHugePages() {
  if (size_ == 0) return;
  const int fd = OpenForCopy();
  // Both cores copy: faulting in fresh pages, not reading the page cache, bounds the copy.
  const int64_t stretches = static_cast<int64_t>(RoundUp(size_, kCopyStretch) / kCopyStretch);
  std::vector<std::string> errors(static_cast<size_t>(stretches));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t s = 0; s < stretches; ++s)
    errors[static_cast<size_t>(s)] = CopyStretch(fd, static_cast<size_t>(s) * kCopyStretch);
  ::close(fd);
  // Stretches that failed keep the file's pages, which hold the same bytes.
  for (const std::string& e : errors)
    if (!e.empty()) Fail(path_, e);
}

std::string MappedFile::CopyIntoHugePages(const std::atomic<bool>& stop) {
  if (size_ == 0) return {};
  int fd = -1;
  try {
    fd = OpenForCopy();
  } catch (const Error& e) {
    return e.what();
  }
  std::string error;
  for (size_t at = 0; at < size_ && error.empty() && !stop.load(); at += kCopyStretch) {
    error = CopyStretch(fd, at);
    if (!error.empty()) error = path_ + ": " + error;
  }
  ::close(fd);
  return error;
}

}  // namespace moe
