#pragma once
// The domain facet of the views: which row of the statistics a selection's domain reads, its
// name, and the combo that chooses it (the load, co-activation and specialization views).
#include <string>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"

namespace moe::studio {

// Domain row of the statistics for a selection's domain (-1 -> the "all domains" row M).
inline int DomainRow(const StudioData& d, int domain) {
  return domain < 0 || domain >= d.num_domains() ? d.num_domains() : domain;
}
// The domain's name, or "all domains" for row M.
std::string DomainName(const StudioData& d, int row);

// A combo of "all domains" and every domain; choosing one sets sel.domain.
void DomainCombo(const StudioData& d, Selection& sel, float width = 160);

}  // namespace moe::studio
