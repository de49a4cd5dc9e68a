#pragma once
// Zip archives held in memory (a mapped torch.save file): just enough to find stored
// (uncompressed) entries by name. ZIP64 records are read (real shards are ~10 GB); compressed,
// encrypted and multi-part archives are errors. Entries are located, never copied.
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace moe {

struct ZipEntry {
  uint64_t data_offset = 0;  // into the archive's bytes
  uint64_t size = 0;
};
using ZipEntries = std::unordered_map<std::string, ZipEntry>;

// Whether the bytes end with a zip end-of-central-directory record (followed only by a comment
// of at most 64 KiB), i.e. whether they can be a zip archive at all.
bool HasZipEndRecord(const uint8_t* bytes, size_t size);

// Every entry of the archive by name, checked to lie inside `size` bytes. Throws Error naming
// `path` (and the entry) for anything malformed or unsupported.
ZipEntries ReadZipEntries(const std::string& path, const uint8_t* bytes, size_t size);

}  // namespace moe
