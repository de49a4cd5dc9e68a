#pragma once
// Fills the views' data (studio_data.h) from a trace through the analysis API: the header and
// document table from TraceReader, every statistic from the statistics API (InspectTraces ->
// ComputeStatsReport), token text from the core Tokenizer. Copies and
// reshapes; computes nothing itself. Runs on a background thread in the app (no Qt, no ImGui).
//
// Every failure is a moe::Error naming the file (TraceReader's messages: not HDF5, not a
// moescope trace, unknown format_version, damaged datasets).
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/stats/accumulator.h"
#include "gui/model/studio_data.h"

namespace moe {
struct LoadedModel;
class Tokenizer;
class TraceReader;
}  // namespace moe

namespace moe::studio {

// Thrown by LoadStudioData when LoadOptions::cancel was set.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

struct LoadOptions {
  StatsOptions stats = DefaultStatsOptions();
  // Token text comes from this tokenizer (the open model's). When null, the trace's own model
  // folder is tried: <model_path>/tokenizer.model, used only when its SHA-256 equals the trace's
  // tokenizer_sha256; otherwise tokens are shown as ids.
  std::shared_ptr<const Tokenizer> tokenizer;
  ModelFacts model;  // the open model, for the overview (DescribeModel); dir empty when none
  // Called with the fraction of tokens read (from the loading thread).
  std::function<void(double)> progress;
  const std::atomic<bool>* cancel = nullptr;
  int64_t first_document = 0;  // loaded into StudioData::document

  // Intervals and permutation tests at a size the app can afford on open.
  static StatsOptions DefaultStatsOptions() {
    StatsOptions s;
    s.bootstrap = 200;
    s.permutations = -1;  // enough for the family (ResolveStatsOptions)
    return s;
  }
};

struct LoadResult {
  StudioData data;
  std::shared_ptr<const Tokenizer> tokenizer;  // what token text came from (may be null)
  // Exports of prune-curve, cache-sim and replay next to the trace (FindResults,
  // results_loader.h) are in data.results; those that looked like one but did not read, here.
  std::vector<std::string> results_errors;
};

LoadResult LoadStudioData(const std::filesystem::path& trace, const LoadOptions& options);

// Display text of token ids: the text the token stands for (Tokenizer::PieceBytes: SentencePiece's
// U+2581 and byte-level BPE's "Ġ" as a space, byte pieces as their byte), with bytes that are not
// UTF-8 on their own as "<0xNN>"; "#id" without a tokenizer.
std::string TokenDisplayText(const Tokenizer* tokenizer, int32_t id);

// Display text of a document's tokens: TokenDisplayText per token, except that a run of up to 4
// tokens whose bytes spell one UTF-8 character shows the character on its first token and "" on
// the rest.
std::vector<std::string> DocumentText(const Tokenizer* tokenizer, const std::vector<int32_t>& ids);

// One document's tokens and routing.
std::shared_ptr<const DocumentRouting> LoadDocument(const TraceReader& reader, int64_t document,
                                                    const Tokenizer* tokenizer);
std::shared_ptr<const DocumentRouting> LoadDocument(const std::filesystem::path& trace,
                                                    int64_t document, const Tokenizer* tokenizer);

// The trace model's tokenizer when it is still there and matches the trace; else null with the
// reason in `why`.
std::shared_ptr<const Tokenizer> TraceTokenizer(const TraceFacts& trace, std::string* why);

// Model facts for the overview (config.json flattened) of an opened model folder.
ModelFacts DescribeModel(const std::filesystem::path& dir, const std::string& config_json);

// Points `options` at an opened model (the app's File > Open model, --model): token text from
// its tokenizer (kept alive by `model`) and its facts from its config.json. A null model leaves
// `options` as it is.
void UseModel(LoadOptions& options, const std::shared_ptr<const LoadedModel>& model);

// A background job's own copy of the model in `dir`: a job's runs install hooks on its model,
// which must not meet another user of the app's model. `reuse` is returned when it is already
// that folder's. Throws moe::Error naming `job` when no model is open, and LoadModel's errors.
std::shared_ptr<LoadedModel> JobModel(const std::string& dir, const std::string& job,
                                      std::shared_ptr<LoadedModel> reuse = nullptr);

}  // namespace moe::studio
