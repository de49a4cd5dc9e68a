#pragma once
// A one-line progress bar for long runs: documents, tokens, tokens/s and ETA, redrawn in place at
// most ten times a second. Silent unless enabled (callers enable it only when stderr is a
// terminal, so logs and pipes stay clean).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace moe {

class ProgressBar {
 public:
  // Totals of the whole job; `done_*` what was already done before this run (resume).
  ProgressBar(bool enabled, int64_t total_docs, int64_t total_tokens, int64_t done_docs = 0,
              int64_t done_tokens = 0, std::FILE* out = stderr);
  ~ProgressBar() { Clear(); }

  void Update(int64_t docs, int64_t tokens);
  // What the first count counts ("docs" unless set; an ablation counts "policies").
  void SetItemsName(std::string name) { items_name_ = std::move(name); }
  // Erases the bar, so the summary line that follows starts on a clean line.
  void Clear();

  double seconds() const;
  // Tokens per second of this run (not counting what was done before it).
  double tokens_per_second() const;

 private:
  void Draw();

  bool enabled_;
  std::FILE* out_;
  int64_t total_docs_, total_tokens_, start_tokens_;
  int64_t docs_ = 0, tokens_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
  std::string items_name_ = "docs";
};

// "12.3k", "4.5M": short counts for the bar and summaries.
std::string ShortCount(double n);
// "1h02m", "3m05s", "12s".
std::string ShortDuration(double seconds);

}  // namespace moe
