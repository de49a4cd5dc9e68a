#include "analysis/common/progress_bar.h"

#include <cmath>

namespace moe {

ProgressBar::ProgressBar(bool enabled, int64_t total_docs, int64_t total_tokens, int64_t done_docs,
                         int64_t done_tokens, std::FILE* out)
    : enabled_(enabled),
      out_(out),
      total_docs_(total_docs),
      total_tokens_(total_tokens),
      start_tokens_(done_tokens),
      docs_(done_docs),
      tokens_(done_tokens),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressBar::tokens_per_second() const {
  const double s = seconds();
  return s > 0 ? static_cast<double>(tokens_ - start_tokens_) / s : 0.0;
}

void ProgressBar::Update(int64_t docs, int64_t tokens) {
  docs_ = docs;
  tokens_ = tokens;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && docs != total_docs_) return;
  last_draw_ = now;
  Draw();
}

void ProgressBar::Draw() {
  constexpr int kWidth = 24;
  const double fraction =
      total_tokens_ > 0 ? static_cast<double>(tokens_) / static_cast<double>(total_tokens_) : 1.0;
  const int filled = static_cast<int>(std::lround(std::min(1.0, fraction) * kWidth));
  const double rate = tokens_per_second();
  const std::string eta =
      rate > 0 ? ShortDuration(static_cast<double>(total_tokens_ - tokens_) / rate) : "?";
  std::fprintf(out_, "\r[%s%s] %3d%%  %s %lld/%lld  tokens %s/%s  %s tok/s  ETA %s\x1b[K",
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), '.').c_str(),
               static_cast<int>(fraction * 100), items_name_.c_str(), static_cast<long long>(docs_),
               static_cast<long long>(total_docs_),
               ShortCount(static_cast<double>(tokens_)).c_str(),
               ShortCount(static_cast<double>(total_tokens_)).c_str(), ShortCount(rate).c_str(),
               eta.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
}

std::string ShortCount(double n) {
  char text[32];
  if (n >= 1e9)
    std::snprintf(text, sizeof(text), "%.1fG", n / 1e9);
  else if (n >= 1e6)
    std::snprintf(text, sizeof(text), "%.1fM", n / 1e6);
  else if (n >= 1e4)
    std::snprintf(text, sizeof(text), "%.1fk", n / 1e3);
  else
    std::snprintf(text, sizeof(text), "%.0f", n);
  return text;
}

std::string ShortDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof(text), "%lldh%02lldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(text, sizeof(text), "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof(text), "%llds", s);
  return text;
}

}  // namespace moe
