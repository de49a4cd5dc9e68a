#pragma once
// Helpers shared by the fuzz targets: the fuzz input as a file (for APIs that open a path) and
// a checksum that touches every byte of a view, so a view reaching past its buffer is a finding
// under AddressSanitizer rather than a silent over-read.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace moe::fuzz {

// One temporary file per process, rewritten for each input. Its name ends in `suffix` because
// some readers choose the format by extension (".jsonl" corpora).
class InputFile {
 public:
  explicit InputFile(const std::string& suffix);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Replaces the file's content with data[0, size) and returns its path.
  const std::filesystem::path& Write(const uint8_t* data, size_t size);

 private:
  std::filesystem::path path_;
};

// Sum of the bytes, kept through Keep so the loop is not optimized away.
void TouchBytes(const void* data, size_t size);

// Stores a value where the optimizer cannot drop the computation that made it.
void Keep(int64_t value);

// Fixture files the targets need beside the input (a model's config.json, its tokenizer).
std::filesystem::path FixturePath(const std::string& relative);

}  // namespace moe::fuzz
