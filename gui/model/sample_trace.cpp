#include "gui/model/sample_trace.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/corpus.h"
#include "analysis/sha256.h"
#include "analysis/trace_reader.h"
#include "analysis/trace_runner.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hooks.h"
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

// RunTrace reports neither progress nor takes a stop flag, but every forward pass goes through
// the model's hooks: counting the tokens of layer 0's routing gives the progress, and throwing
// from the hook ends the run (the trace keeps its committed prefix and can be resumed).
class TraceProgress : public RoutingObserver {
 public:
  TraceProgress(int64_t total, const std::atomic<bool>* stop,
                const std::function<void(double)>& progress)
      : total_(std::max<int64_t>(1, total)), stop_(stop), progress_(progress) {}
  std::vector<HookRequest> Requests() const override { return {{HookSite::kTopkIds, 0}}; }
  void OnEvent(const HookEvent& ev) override {
    if (stop_ != nullptr && stop_->load()) throw Cancelled();
    const uint8_t* real = ev.tokens != nullptr ? ev.tokens->real : nullptr;
    for (int64_t t = 0; t < ev.rows; ++t) done_ += real == nullptr || real[t] != 0;
    if (progress_) progress_(std::min(1.0, static_cast<double>(done_) / total_));
  }

 private:
  int64_t total_, done_ = 0;
  const std::atomic<bool>* stop_;
  const std::function<void(double)>& progress_;
};

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

  const Corpus corpus = ReadCorpus(
      std::vector<std::filesystem::path>(o.run.corpus_files.begin(), o.run.corpus_files.end()),
      model.tokenizer.get(), model.config().vocab_size, {});
  TraceProgress counter(corpus.tokens(), stop, progress);
  HookGuard guard = model.model->hooks().Add(&counter);
  try {
    RunTrace(model, RoutingPolicy{}, o);
  } catch (const Cancelled&) {
    throw;
  } catch (const Error&) {
    if (!o.resume) throw;
    // The interrupted trace was of another run (corpus or settings changed): start over.
    std::filesystem::remove(r.output);
    o.resume = false;
    RunTrace(model, RoutingPolicy{}, o);
  }
  if (progress) progress(1.0);
  return r.output;
}

}  // namespace moe::studio
