#include "analysis/trace/trace_writer.h"

#include "analysis/common/hdf5_util.h"

namespace moe {

std::unique_ptr<TraceWriter> TraceWriter::Create(const std::filesystem::path& path,
                                                 const TraceHeader& header, size_t queue_chunks) {
  return std::unique_ptr<TraceWriter>(
      new TraceWriter(TraceFile::Create(path, header), queue_chunks));
}

std::unique_ptr<TraceWriter> TraceWriter::Resume(const std::filesystem::path& path,
                                                 size_t queue_chunks) {
  return std::unique_ptr<TraceWriter>(new TraceWriter(TraceFile::Reopen(path), queue_chunks));
}

TraceWriter::TraceWriter(TraceFile file, size_t queue_chunks)
    : file_(std::move(file)),
      capacity_(queue_chunks == 0 ? 1 : queue_chunks),
      initial_documents_(file_.documents()),
      initial_tokens_(file_.tokens()) {
  thread_ = std::thread([this] { Loop(); });
}

TraceWriter::~TraceWriter() {
  try {
    Drain();
  } catch (...) {
    // A destructor cannot report; the file keeps complete = 0 and its committed prefix.
  }
  try {
    file_.Close();
  } catch (...) {
  }
}

void TraceWriter::Loop() {
  h5::SilenceErrors();  // per thread in the thread-safe HDF5 build
  for (;;) {
    TraceChunk chunk;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      not_empty_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;
      chunk = std::move(queue_.front());
      queue_.pop_front();
    }
    not_full_.notify_one();
    try {
      file_.Commit(chunk);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      queue_.clear();
      not_full_.notify_all();
      return;
    }
  }
}

void TraceWriter::Append(TraceChunk chunk) {
  std::unique_lock<std::mutex> lock(mutex_);
  not_full_.wait(lock, [&] { return queue_.size() < capacity_ || error_ || !thread_.joinable(); });
  if (error_) std::rethrow_exception(error_);
  if (!thread_.joinable()) throw std::logic_error("TraceWriter::Append after Finish");
  queue_.push_back(std::move(chunk));
  lock.unlock();
  not_empty_.notify_one();
}

void TraceWriter::Drain() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    not_empty_.notify_all();
    thread_.join();
  }
  if (error_) std::rethrow_exception(error_);
}

void TraceWriter::Close() {
  Drain();
  h5::SilenceErrors();
  file_.Close();
}

void TraceWriter::Finish() {
  Drain();
  h5::SilenceErrors();
  file_.MarkComplete();
  file_.Close();
}

}  // namespace moe
