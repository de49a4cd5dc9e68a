#pragma once
// Follows a trace that `moescope trace` may still be writing (HDF5 SWMR, docs/trace-format.md):
// the app loads a growing trace's committed prefix, then asks Changed() from a timer and loads it
// again when more documents were committed or the trace was completed. No Qt: the shell polls,
// tests call it directly.
#include <cstdint>
#include <filesystem>
#include <memory>

namespace moe {
class TraceReader;
}

namespace moe::studio {

class TraceWatch {
 public:
  // Opens `trace` for SWMR reading. `documents` and `complete` describe what the app shows (the
  // loaded StudioData's trace facts). Throws moe::Error naming the file when it cannot be read.
  TraceWatch(const std::filesystem::path& trace, int64_t documents, bool complete);
  ~TraceWatch();
  TraceWatch(const TraceWatch&) = delete;
  TraceWatch& operator=(const TraceWatch&) = delete;

  // Re-reads the committed prefix; whether it holds more documents than shown, or the trace was
  // completed. Throws moe::Error when the trace became unreadable (e.g. replaced by another).
  bool Changed();
  // After the app loaded the trace again: what it shows now.
  void Shown(int64_t documents, bool complete);

  // The committed prefix at the last Changed().
  int64_t documents() const;
  bool complete() const;

 private:
  std::unique_ptr<TraceReader> reader_;
  int64_t shown_documents_;
  bool shown_complete_;
};

}  // namespace moe::studio
