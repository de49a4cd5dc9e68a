#pragma once
// How documents longer than the model's window are cut for tracing. Window w of a document of
// n tokens runs tokens [begin, end) on their own (positions 0..end-begin-1) and records
// [record_begin, end):
//   window 0:   begin = 0, end = min(max_window, n), record_begin = 0
//   window w+1: begin = begin_w + stride, end = min(begin + max_window, n), record_begin = end_w
// until a window reaches n. With stride == max_window (the default) windows do not overlap and
// every token is recorded from the window it sits in; with stride < max_window each later window
// starts with max_window - stride tokens of context that are run but not recorded again.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct TraceWindow {
  int64_t doc = 0;
  int64_t begin = 0, end = 0;  // tokens run
  int64_t record_begin = 0;    // first token recorded
  bool last = false;           // the document's final window
  int64_t length() const { return end - begin; }
};

struct WindowRule {
  int64_t max_window = 0;
  int64_t stride = 0;

  // Throws Error unless 1 <= stride <= max_window <= context_length.
  void Validate(int64_t context_length) const;
  // This rule with its defaults filled in (max_window 0: the context length; stride 0: the
  // window), validated.
  WindowRule Resolved(int64_t context_length) const;
  // The "windowing" root attribute of a trace (JSON text).
  std::string Describe(int64_t context_length) const;
};

std::vector<TraceWindow> SplitDocument(int64_t doc, int64_t tokens, const WindowRule& rule);

}  // namespace moe
