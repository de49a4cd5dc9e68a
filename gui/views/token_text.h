#pragma once
// How a token's display text (studio_loader.h, TokenDisplayText) is drawn in a line of text:
// a newline as U+21B5 and a tab as U+2192, so tokens made of whitespace stay visible. Shared by
// the live prompt and ablation views.
#include <string>

namespace moe::studio {

inline std::string ShownToken(const std::string& text) {
  if (text == "\n") return "\xe2\x86\xb5";
  if (text == "\t") return "\xe2\x86\x92";
  return text;
}

}  // namespace moe::studio
