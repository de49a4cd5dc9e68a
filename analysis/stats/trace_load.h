#pragma once
// Per-domain expert load and importance (analysis/trace/domain_load.h) counted from a trace's
// committed routing rows, with the accumulation the writer uses for the /stats it stores
// (ExpertStats::AddToken, as TraceChunkBuilder adds each chunk). TraceReader::ReadStats reads
// those stored datasets instead; in an interrupted trace they may run ahead of the committed
// prefix by the chunk being written when it stopped, while this count is exact for any trace.
#include "analysis/trace/domain_load.h"

namespace moe {

class TraceReader;

// Reads the routing and token-document rows of the committed prefix in blocks. Throws Error
// naming /tokens/doc when a row names a document outside the trace.
ExpertStats ComputeDomainLoad(const TraceReader& reader);

}  // namespace moe
