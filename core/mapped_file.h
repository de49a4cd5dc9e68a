#pragma once
// A read-only memory map of a whole file. Checkpoint tensors point into it, so weights are
// paged in on first use and never copied, unless CopyIntoHugePages() is asked for.
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

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;  // 2 MiB-aligned, so a copy can use whole huge pages
  size_t size_ = 0;
};

}  // namespace moe
