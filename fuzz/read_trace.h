#pragma once
// Opens a trace with TraceReader and reads everything it exposes, as the statistics pass does:
// shared by the trace fuzz targets.
#include <filesystem>

namespace moe::fuzz {

void ReadWholeTrace(const std::filesystem::path& path);

}  // namespace moe::fuzz
