#pragma once
// One writer per output file. A trace is written under SWMR, and HDF5 gives up its own file lock
// once SWMR writing starts, so two `moescope trace -o SAME.h5` runs could interleave their
// chunks and both report success. A WriterLock is an open-file-description lock (Linux
// F_OFD_SETLK) on the output itself, held from before the file is created or truncated until the
// writer closes: the second writer fails at once and touches nothing. OFD locks are independent
// of the flock() HDF5 takes, and belong to this one descriptor, so HDF5 or a reader opening and
// closing the same file in this process does not release it.
#include <filesystem>

namespace moe {

class WriterLock {
 public:
  WriterLock() = default;
  // Opens (creating it empty if missing) and locks `path`; throws Error naming the path when
  // another process holds the lock or the file cannot be opened.
  static WriterLock Acquire(const std::filesystem::path& path);

  WriterLock(WriterLock&& other) noexcept;
  WriterLock& operator=(WriterLock&& other) noexcept;
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  ~WriterLock() { Release(); }

  bool held() const { return fd_ >= 0; }
  // True when Acquire created the file (so a writer that fails before writing can remove it).
  bool created_file() const { return created_; }
  void Release();

 private:
  int fd_ = -1;
  bool created_ = false;
};

}  // namespace moe
