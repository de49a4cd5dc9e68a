#pragma once
// The trace moescope-studio opens when started without one: the bundled model over the bundled
// sample corpus (datasets/sample/*.jsonl, 7 domains, 56 documents), kept in the user's cache
// folder. It is made once with the analysis API (RunTrace) and made again when the model's
// checkpoint no longer matches (its SHA-256 differs from the trace's checkpoint_sha256); an
// interrupted build is resumed. No Qt: the shell runs EnsureSampleTrace on a background thread.
#include <atomic>
#include <filesystem>
#include <functional>

namespace moe::studio {

// The bundled corpus: $MOESCOPE_SAMPLE_CORPUS if set, else datasets/sample of the source tree
// (found the way core DefaultModelDir() finds the bundled model: a path compiled in).
std::filesystem::path SampleCorpusDir();

struct SampleTraceRequest {
  std::filesystem::path model_dir;   // the bundled model (DefaultModelDir())
  std::filesystem::path corpus_dir;  // its *.jsonl files, in name order
  std::filesystem::path output;      // <cache>/moescope/sample_trace.h5
};

// Whether `output` is a complete trace of this model's checkpoint (same checkpoint_sha256).
bool SampleTraceUpToDate(const SampleTraceRequest& request);

// Returns `output` once it is a complete trace of the model's checkpoint: as it is when
// SampleTraceUpToDate, else resumed (an interrupted build of the same model and corpus) or made
// anew. `progress` gets the fraction of corpus tokens traced; a set `stop` ends the build after
// RunTrace's current group of batches (TraceOptions::stop: finished documents are committed)
// and throws Cancelled (studio_loader.h), leaving an incomplete trace the next start resumes.
// Errors are moe::Errors naming the file.
std::filesystem::path EnsureSampleTrace(const SampleTraceRequest& request,
                                        const std::atomic<bool>* stop = nullptr,
                                        const std::function<void(double)>& progress = {});

}  // namespace moe::studio
