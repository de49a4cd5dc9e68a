#pragma once
// Writes a trace on its own thread: the producer hands over whole documents (TraceChunk) through
// a bounded queue, so the model never waits for compression or disk unless the queue is full,
// and memory stays bounded when the disk is slow. Each chunk is committed and flushed in the
// crash-safe order of TraceFile; a reader following with SWMR sees whole documents only.
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "analysis/trace/trace_file.h"

namespace moe {

class TraceWriter {
 public:
  // A new trace at `path` (replacing any file there).
  static std::unique_ptr<TraceWriter> Create(const std::filesystem::path& path,
                                             const TraceHeader& header, size_t queue_chunks = 4);
  // Continues an interrupted trace after its committed prefix (see TraceFile::Reopen). The
  // caller checks beforehand that the run matches the trace (TraceReader).
  static std::unique_ptr<TraceWriter> Resume(const std::filesystem::path& path,
                                             size_t queue_chunks = 4);

  // Without Finish the trace is left with complete = 0: queued chunks are still written, then
  // the file is closed.
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Queues whole documents; blocks while the queue is full. Rethrows the writer thread's error
  // if a commit failed.
  void Append(TraceChunk chunk);
  // Writes everything queued, sets complete = 1 and closes the file.
  void Finish();
  // Writes everything queued and closes the file with complete = 0 (a stopped run, resumable);
  // unlike the destructor it reports a failed commit.
  void Close();

  // Documents and tokens already in the file when it was opened (non-zero after Resume).
  int64_t initial_documents() const { return initial_documents_; }
  int64_t initial_tokens() const { return initial_tokens_; }

 private:
  TraceWriter(TraceFile file, size_t queue_chunks);
  void Loop();
  // Stops the thread after the queue drains; rethrows its error, if any.
  void Drain();

  TraceFile file_;
  size_t capacity_;
  int64_t initial_documents_, initial_tokens_;
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<TraceChunk> queue_;
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace moe
