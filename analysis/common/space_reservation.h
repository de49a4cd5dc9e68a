#pragma once
// Disk space reserved before an HDF5 commit, so that a full disk fails the commit before HDF5
// writes any of it. HDF5 is not transactional: when a flush runs out of space half-way it goes on
// to write the metadata, which overwrites blocks the file already has and so succeeds, while
// the new data chunks it points to were never written (they then read as zeros). Reserving the
// blocks first (fallocate with FALLOC_FL_KEEP_SIZE, which allocates past the end without
// changing the file's size) turns a full disk into an error before the commit starts.
#include <hdf5.h>

#include <cstdint>
#include <string>

namespace moe::h5 {

// Reserves `bytes` past the end of `file` (an HDF5 file opened with the default sec2 driver).
// Throws Error naming `path` when the disk has no room; does nothing where the file system
// cannot reserve space (no fallocate), which leaves the HDF5 behaviour above.
void ReserveSpace(hid_t file, uint64_t bytes, const std::string& path);

}  // namespace moe::h5
