#pragma once
// `moescope merge`: joins finished traces of consecutive parts of a corpus (shards) into one
// trace whose bulky token-axis datasets are HDF5 virtual datasets (VDS) over the shards, in
// order; nothing of them is copied. The datasets whose values depend on a row's place in the
// whole trace (/tokens/doc, /docs/*, /routing/logit_token, /domains, /stats) are re-based and
// written as real datasets (docs/distributed.md lists which is which). The result reads like a
// single-process trace through h5py, TraceReader, `stats` and `compare`, as long as the shards
// stay where they were (the VDS names them relative to the merged file's folder when they lie
// under it).
//
// Refused, with one line naming the file: a shard that is missing, unreadable or not a trace, one
// that is incomplete (complete = 0), and shards that differ from the first in model (config,
// checkpoint and tokenizer hashes), routing policy, windowing, logit sampling or routing shape.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace moe {

struct MergeOptions {
  // The whole run's `corpus` attribute and /domains (an MPI run's rank 0 passes its own, so the
  // merged trace carries exactly the attributes a single-process run writes). Unset: built from
  // the shards (files and skip lists concatenated, counts summed, domains in order of first
  // appearance over the shards).
  std::optional<std::string> corpus;
  std::optional<std::vector<std::string>> domains;
};

struct MergeSummary {
  std::string output;
  int64_t shards = 0, documents = 0, tokens = 0;
};

MergeSummary MergeTraces(const std::vector<std::filesystem::path>& shards,
                         const std::filesystem::path& output, const MergeOptions& options = {});

std::string FormatMergeSummary(const MergeSummary& summary);

}  // namespace moe
