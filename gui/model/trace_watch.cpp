#include "gui/model/trace_watch.h"

#include "analysis/trace/trace_reader.h"

namespace moe::studio {

TraceWatch::TraceWatch(const std::filesystem::path& trace, int64_t documents, bool complete)
    : reader_(std::make_unique<TraceReader>(trace, /*swmr=*/true)),
      shown_documents_(documents),
      shown_complete_(complete) {}

TraceWatch::~TraceWatch() = default;

bool TraceWatch::Changed() {
  reader_->Refresh();
  return reader_->num_documents() > shown_documents_ ||
         (reader_->info().complete && !shown_complete_);
}

void TraceWatch::Shown(int64_t documents, bool complete) {
  shown_documents_ = documents;
  shown_complete_ = complete;
}

int64_t TraceWatch::documents() const {
  return reader_->num_documents();
}

bool TraceWatch::complete() const {
  return reader_->info().complete;
}

}  // namespace moe::studio
