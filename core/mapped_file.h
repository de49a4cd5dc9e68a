#pragma once
// A read-only memory map of a whole file. Checkpoint tensors point into it, so weights are
// paged in on first use and never copied, unless CopyIntoHugePages() is asked for.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Replaces the file's pages by a private copy in memory advised for 2 MiB pages, at the same
  // address, so pointers into data() stay valid. Decoding reads every weight once per token; with
  // 4 KiB page-cache pages that is one TLB entry per 4 KiB, and on a large model the page walks
  // cost a fifth of the step (docs/performance.md). The copy takes time and memory the mapping
  // does not. Throws Error naming the path if memory or the file fail; the mapping then stays.
  void CopyIntoHugePages();

  // The same copy one 64 MiB stretch at a time on the calling thread, each stretch taking its
  // place in the mapping when done, so that another thread may compute with the weights
  // meanwhile (Checkpoint::StartCopyIntoHugePages): reads see the file's pages or the copy, the
  // same bytes. Stops early when `stop` is set. Returns "" or an error naming the path; the
  // stretches not copied stay mapped from the file.
  std::string CopyIntoHugePages(const std::atomic<bool>& stop);
  // Bytes now held in the copy.
  size_t copied_bytes() const { return copied_bytes_.load(); }

 private:
  static constexpr size_t kCopyStretch = size_t{64} << 20;

  // A descriptor of the file, checked to have the size it had when mapped.
  int OpenForCopy() const;
  // Copies the stretch [at, at + kCopyStretch) and moves it into place; returns an error or "".
  std::string CopyStretch(int fd, size_t at);

  std::string path_;
  const uint8_t* data_ = nullptr;  // 2 MiB-aligned, so a copy can use whole huge pages
  size_t size_ = 0;
  std::atomic<size_t> copied_bytes_{0};
};

}  // namespace moe
