#include "analysis/run/trace_windows.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe {

void WindowRule::Validate(int64_t context_length) const {
  if (max_window < 1 || max_window > context_length)
    Fail("--max-window", std::to_string(max_window) + " is out of range (1.." +
                             std::to_string(context_length) + ", the context length)");
  if (stride < 1 || stride > max_window)
    Fail("--window-stride", std::to_string(stride) + " is out of range (1.." +
                                std::to_string(max_window) + ", the window)");
}

WindowRule WindowRule::Resolved(int64_t context_length) const {
  WindowRule r = *this;
  if (r.max_window == 0) r.max_window = context_length;
  if (r.stride == 0) r.stride = r.max_window;
  r.Validate(context_length);
  return r;
}

std::string WindowRule::Describe(int64_t context_length) const {
  nlohmann::json j = {
      {"max_window", max_window},
      {"stride", stride},
      {"context_length", context_length},
      {"rule",
       "documents longer than max_window are cut into windows run on their own (positions "
       "restart at 0); window w+1 starts stride tokens after window w and records the tokens "
       "after window w's end, so with stride < max_window the first max_window - stride tokens "
       "of a later window are context only"}};
  return j.dump();
}

std::vector<TraceWindow> SplitDocument(int64_t doc, int64_t tokens, const WindowRule& rule) {
  std::vector<TraceWindow> windows;
  if (tokens <= 0) return windows;
  TraceWindow w{doc, 0, std::min(rule.max_window, tokens), 0, false};
  windows.push_back(w);
  while (w.end < tokens) {
    const int64_t begin = w.begin + rule.stride;
    w = {doc, begin, std::min(begin + rule.max_window, tokens), w.end, false};
    windows.push_back(w);
  }
  windows.back().last = true;
  return windows;
}

}  // namespace moe
