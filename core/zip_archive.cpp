#include "core/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "core/byte_cursor.h"
#include "core/error.h"

namespace moe {
namespace {

// torch.save writes entries with a data descriptor, so sizes come from the central directory,
// not from the local headers.
constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kCentralDirSig = 0x02014b50;
constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint16_t kDataDescriptorFlag = 0x8;  // CRC and sizes follow the data, not the header
constexpr size_t kEndOfCentralDirSize = 22;
constexpr size_t kZip64LocatorSize = 20;

std::string Hex32(uint32_t v) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// An entry whose bytes do not hash to the CRC-32 the archive records was altered after writing
// (or damaged on disk): refused, since it would load as different weights.
void CheckCrc32(const std::string& path, const uint8_t* bytes, const std::string& name,
                const ZipEntry& entry) {
  const uint32_t actual = Crc32(bytes + entry.data_offset, entry.size);
  if (actual != entry.crc32) {
    FailAbout(path + ": zip entry " + Quoted(name),
              "has CRC-32 " + Hex32(actual) + " but the archive records " + Hex32(entry.crc32) +
                  ": its bytes were altered or damaged");
  }
}

struct CentralDirectory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Where the end-of-central-directory record starts: at the very end, followed only by a
// comment of at most 64 KiB.
std::optional<size_t> FindEndRecord(const uint8_t* bytes, size_t size) {
  if (size < kEndOfCentralDirSize) return std::nullopt;
  const size_t max_distance = kEndOfCentralDirSize + 0xffff;
  const size_t lowest = size > max_distance ? size - max_distance : 0;
  for (size_t pos = size - kEndOfCentralDirSize + 1; pos-- > lowest;) {
    const uint8_t* p = bytes + pos;
    const uint32_t sig = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
    if (sig == kEndOfCentralDirSig) return pos;
  }
  return std::nullopt;
}

// Archives over 4 GiB keep the true central directory values in a ZIP64 record, found through
// the locator just before the end record.
void ReadZip64Record(const std::string& path, const uint8_t* bytes, size_t size, size_t eocd,
                     CentralDirectory& dir) {
  if (eocd < kZip64LocatorSize) Fail(path, "zip ZIP64 locator is missing");
  ByteCursor loc(bytes, size, eocd - kZip64LocatorSize, path + ": zip ZIP64 locator");
  if (loc.U32() != kZip64LocatorSig) Fail(path, "zip ZIP64 locator is missing");
  loc.U32();  // disk
  const uint64_t record = loc.U64();
  ByteCursor r(bytes, size, record, path + ": zip ZIP64 end-of-central-directory record");
  if (record > size || r.U32() != kZip64EndOfCentralDirSig) {
    Fail(path,
         "zip ZIP64 end-of-central-directory record is missing at byte " + std::to_string(record));
  }
  r.Take(8 + 2 + 2 + 4 + 4 + 8);  // record size, versions, disks, entries on this disk
  dir.entries = r.U64();
  dir.size = r.U64();
  dir.offset = r.U64();
}

CentralDirectory FindCentralDirectory(const std::string& path, const uint8_t* bytes, size_t size) {
  const std::optional<size_t> eocd = FindEndRecord(bytes, size);
  if (!eocd) Fail(path, "not a zip archive (no end-of-central-directory record)");

  ByteCursor c(bytes, size, *eocd + 4, path + ": zip end-of-central-directory record");
  const uint16_t disk = c.U16();
  c.U16();  // disk holding the central directory
  c.U16();  // entries on this disk
  CentralDirectory dir{c.U16(), 0, 0};
  dir.size = c.U32();
  dir.offset = c.U32();
  if (disk != 0) Fail(path, "a multi-part zip archive, which torch.save never writes");
  if (dir.entries == 0xffff || dir.size == 0xffffffff || dir.offset == 0xffffffff)
    ReadZip64Record(path, bytes, size, *eocd, dir);
  if (dir.offset > size || dir.size > size - dir.offset) {
    Fail(path, "zip central directory (" + std::to_string(dir.size) + " bytes at " +
                   std::to_string(dir.offset) + ") runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }
  return dir;
}

// Where an entry's data starts: after its local header, whose variable-length parts (name and
// extra field) may differ from the central directory's. A local header without a data
// descriptor (flag bit 3) carries the CRC-32 too, which must agree with the central directory's.
uint64_t LocateData(const std::string& where, const uint8_t* bytes, size_t size,
                    uint64_t local_offset, uint64_t data_size, uint32_t crc) {
  ByteCursor local(bytes, size, local_offset, where + " local header");
  if (local_offset > size || local.U32() != kLocalHeaderSig) {
    FailAbout(where, "has no local header at byte " + std::to_string(local_offset));
  }
  local.Take(2);  // version
  const uint16_t flags = local.U16();
  local.Take(2 + 2 + 2);  // method, time, date
  const uint32_t local_crc = local.U32();
  local.Take(4 + 4);  // sizes
  if (!(flags & kDataDescriptorFlag) && local_crc != crc) {
    FailAbout(where, "has CRC-32 " + Hex32(local_crc) + " in its local header but " + Hex32(crc) +
                         " in the central directory");
  }
  const uint16_t local_name_len = local.U16();
  const uint16_t local_extra_len = local.U16();
  local.Take(local_name_len);
  local.Take(local_extra_len);
  const uint64_t data_offset = local.pos();
  if (data_size > size - data_offset) {
    FailAbout(where, "data (" + std::to_string(data_size) + " bytes at " +
                         std::to_string(data_offset) + ") runs past the end of the file (" +
                         std::to_string(size) + " bytes)");
  }
  return data_offset;
}

// One central directory record at the cursor: the entry's name and where its data lies.
std::pair<std::string, ZipEntry> ReadCentralEntry(ByteCursor& c, uint64_t index,
                                                  const std::string& path, const uint8_t* bytes,
                                                  size_t size) {
  if (c.U32() != kCentralDirSig) {
    Fail(path, "zip central directory entry " + std::to_string(index) + " has a bad signature");
  }
  c.Take(4);  // versions
  const uint16_t flags = c.U16();
  const uint16_t method = c.U16();
  c.Take(2 + 2);  // time, date
  const uint32_t crc = c.U32();
  uint64_t compressed = c.U32();
  uint64_t uncompressed = c.U32();
  const uint16_t name_len = c.U16();
  const uint16_t extra_len = c.U16();
  const uint16_t comment_len = c.U16();
  c.Take(2 + 2 + 4);  // disk, attributes
  uint64_t local_offset = c.U32();
  std::string name = c.String(name_len);
  const std::string where = path + ": zip entry " + Quoted(name);

  // ZIP64 extra field: the 64-bit values of exactly those fields that hold 0xffffffff, in this
  // order.
  ByteCursor extra(c.Take(extra_len), extra_len, 0, where + " extra field");
  while (!extra.AtEnd()) {
    const uint16_t id = extra.U16();
    const uint16_t len = extra.U16();
    ByteCursor field(extra.Take(len), len, 0, where + " ZIP64 extra field");
    if (id != 0x0001) continue;
    if (uncompressed == 0xffffffff) uncompressed = field.U64();
    if (compressed == 0xffffffff) compressed = field.U64();
    if (local_offset == 0xffffffff) local_offset = field.U64();
  }
  c.Take(comment_len);

  if (flags & 0x1) FailAbout(where, "is encrypted");
  if (method != 0) {
    FailAbout(where, "is compressed (zip method " + std::to_string(method) +
                         "); moescope reads only stored (uncompressed) entries, as torch.save "
                         "writes them");
  }
  if (compressed != uncompressed) {
    FailAbout(where, "is stored but its compressed size " + std::to_string(compressed) +
                         " differs from its size " + std::to_string(uncompressed));
  }
  const uint64_t data_offset = LocateData(where, bytes, size, local_offset, uncompressed, crc);
  return {std::move(name), ZipEntry{data_offset, uncompressed, crc}};
}

}  // namespace

bool HasZipEndRecord(const uint8_t* bytes, size_t size) {
  return FindEndRecord(bytes, size).has_value();
}

ZipEntries ReadZipEntries(const std::string& path, const uint8_t* bytes, size_t size) {
  const CentralDirectory dir = FindCentralDirectory(path, bytes, size);
  ZipEntries entries;
  ByteCursor c(bytes, dir.offset + dir.size, dir.offset, path + ": zip central directory");
  for (uint64_t i = 0; i < dir.entries; ++i) {
    auto [name, entry] = ReadCentralEntry(c, i, path, bytes, size);
    if (!entries.emplace(name, entry).second) {
      FailAbout(path + ": zip entry " + Quoted(name), "appears twice in the archive");
    }
  }
  for (const auto& [name, entry] : entries) CheckCrc32(path, bytes, name, entry);
  return entries;
}

uint32_t Crc32(const uint8_t* data, size_t size) {
  // zlib takes at most 4 GiB per call (uInt lengths); chunks of 64 MiB also let every thread
  // hash a part, which crc32_combine then joins in order.
  constexpr size_t kChunk = size_t{64} << 20;
  const int64_t chunks = static_cast<int64_t>((size + kChunk - 1) / kChunk);
  std::vector<uLong> parts(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    parts[c] = crc32(0, data + begin, static_cast<uInt>(std::min(kChunk, size - begin)));
  }
  uLong crc = crc32(0, nullptr, 0);
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    crc = crc32_combine(crc, parts[c], static_cast<z_off_t>(std::min(kChunk, size - begin)));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace moe
