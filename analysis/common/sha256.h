#pragma once
// SHA-256 (FIPS 180-4), for the checkpoint, tokenizer and corpus fingerprints stored in traces.
// SHA-256 rather than a faster 64-bit hash because the Hugging Face hub lists the SHA-256 of every
// large file, so a trace's checkpoint hashes can be compared with the published ones.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace moe {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t bytes);
  void Update(const std::string& text) { Update(text.data(), text.size()); }
  // Lower-case hex of the digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Hex SHA-256 of a file's bytes; throws Error naming the file when it cannot be read.
std::string Sha256OfFile(const std::filesystem::path& file);

}  // namespace moe
