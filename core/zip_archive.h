#pragma once
// Zip archives held in memory (a mapped torch.save file): just enough to find stored
// (uncompressed) entries by name. ZIP64 records are read (real shards are ~10 GB); compressed,
// encrypted and multi-part archives are errors. Entries are located, never copied, and each
// entry's bytes are checked against its CRC-32 when the archive is read, so altered bytes fail
// at load instead of loading as different weights.
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace moe {

struct ZipEntry {
  uint64_t data_offset = 0;  // into the archive's bytes
  uint64_t size = 0;
  uint32_t crc32 = 0;  // from the central directory, checked against the bytes
};
using ZipEntries = std::unordered_map<std::string, ZipEntry>;

// Whether the bytes end with a zip end-of-central-directory record (followed only by a comment
// of at most 64 KiB), i.e. whether they can be a zip archive at all.
bool HasZipEndRecord(const uint8_t* bytes, size_t size);

// Every entry of the archive by name, checked to lie inside `size` bytes and to match its CRC-32.
// Throws Error naming `path` (and the entry) for anything malformed, unsupported or altered.
ZipEntries ReadZipEntries(const std::string& path, const uint8_t* bytes, size_t size);

// The CRC-32 of zip (and zlib), computed on all OpenMP threads for large inputs.
uint32_t Crc32(const uint8_t* data, size_t size);

}  // namespace moe
