#pragma once
// Damage to a valid trace made through the HDF5 API, driven by fuzz input: attributes of the
// root rewritten with other values and types or deleted, dataset elements overwritten, datasets
// resized or deleted. HDF5 itself stays consistent, so what is fuzzed is the trace reader's own
// checks of what it finds (shapes, offsets, ids, counts), not HDF5's file parser.
#include <filesystem>

#include <fuzzer/FuzzedDataProvider.h>

namespace moe::fuzz {

// Applies edits to the trace at `path` until the input runs out.
void EditTrace(const std::filesystem::path& path, FuzzedDataProvider& input);

}  // namespace moe::fuzz
