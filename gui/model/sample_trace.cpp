#include "gui/model/sample_trace.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/common/sha256.h"
#include "analysis/trace/trace_reader.h"
#include "analysis/run/trace_runner.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "gui/model/studio_loader.h"

namespace moe::studio {
namespace {

std::vector<std::string> CorpusFiles(const std::filesystem::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".jsonl") files.push_back(entry.path().string());
  if (ec) Fail(dir.string(), "cannot be read: " + ec.message());
  if (files.empty()) Fail(dir.string(), "has no .jsonl corpus files");
  std::sort(files.begin(), files.end());  // the domains' order does not depend on the file system
  return files;
}

// The checkpoint_sha256 a trace of this model records (as MakeTraceHeader computes it).
nlohmann::json CheckpointHashes(const std::filesystem::path& model_dir) {
  const Checkpoint checkpoint(model_dir);
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& f : checkpoint.Files()) files[f] = Sha256OfFile(model_dir / f);
  return files;
}

}  // namespace

std::filesystem::path SampleCorpusDir() {
  if (const char* env = std::getenv("MOESCOPE_SAMPLE_CORPUS"); env != nullptr && *env != '\0')
    return env;
  return MOESCOPE_SAMPLE_CORPUS_DIR;
}

bool SampleTraceUpToDate(const SampleTraceRequest& r) {
  std::error_code ec;
  if (!std::filesystem::exists(r.output, ec)) return false;
  try {
    const TraceReader reader(r.output);
    if (!reader.info().complete) return false;
    return nlohmann::json::parse(reader.info().checkpoint_sha256) == CheckpointHashes(r.model_dir);
  } catch (const std::exception&) {
    return false;  // not a readable trace: made anew
  }
}

std::filesystem::path EnsureSampleTrace(const SampleTraceRequest& r, const std::atomic<bool>* stop,
                                        const std::function<void(double)>& progress) {
  if (SampleTraceUpToDate(r)) {
    if (progress) progress(1.0);
    return r.output;
  }
  const LoadedModel model = LoadModel(r.model_dir);  // the job's own: it installs hooks
  TraceOptions o;
  o.output = r.output;
  o.run.corpus_files = CorpusFiles(r.corpus_dir);
  std::filesystem::create_directories(r.output.parent_path());

  // A trace of another checkpoint (or a damaged file) is replaced; an incomplete trace of this
  // one is resumed.
  std::error_code ec;
  if (std::filesystem::exists(r.output, ec)) {
    bool resumable = false;
    try {
      const TraceReader reader(r.output);
      resumable =
          !reader.info().complete &&
          nlohmann::json::parse(reader.info().checkpoint_sha256) == CheckpointHashes(r.model_dir);
    } catch (const std::exception&) {
    }
    if (resumable)
      o.resume = true;
    else
      std::filesystem::remove(r.output);
  }

  // A stop ends the run after its current batches with the finished documents committed; the
  // next start resumes the incomplete trace.
  o.stop = stop;
  if (progress)
    o.on_progress = [&progress](int64_t done, int64_t total) {
      progress(total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0);
    };
  TraceSummary summary;
  try {
    summary = RunTrace(model, RoutingPolicy{}, o);
  } catch (const Error&) {
    if (!o.resume) throw;
    // The interrupted trace was of another run (corpus or settings changed): start over.
    std::filesystem::remove(r.output);
    o.resume = false;
    summary = RunTrace(model, RoutingPolicy{}, o);
  }
  if (summary.interrupted) throw Cancelled();
  if (progress) progress(1.0);
  return r.output;
}

}  // namespace moe::studio
