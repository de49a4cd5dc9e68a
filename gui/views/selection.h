#pragma once
// The one selection every view reads and may change (docs/gui.md): a layer, experts of that
// layer, a domain facet, a document and a token range in it. Views change it in Draw; the shell
// compares it before and after a frame and redraws the other views when it moved.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace moe::studio {

struct Selection {
  int layer = 0;
  std::vector<int> experts;  // selected experts of `layer`, ascending; empty = none
  int domain = -1;           // -1 = all domains, else an index into StudioData::domains
  int64_t document = 0;      // index of the document the token map shows
  // Selected tokens of that document, rows [token_begin, token_end); empty when equal.
  int64_t token_begin = 0, token_end = 0;

  bool HasExpert(int e) const { return std::binary_search(experts.begin(), experts.end(), e); }
  void SelectExpert(int layer_, int e) {
    layer = layer_;
    experts = {e};
  }
  void ToggleExpert(int e) {
    auto it = std::lower_bound(experts.begin(), experts.end(), e);
    if (it != experts.end() && *it == e) experts.erase(it);
    else experts.insert(it, e);
  }
  bool HasTokens() const { return token_end > token_begin; }
  bool operator==(const Selection&) const = default;
};

}  // namespace moe::studio
