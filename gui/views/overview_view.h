#pragma once
// Overview: the trace's and model's facts (config, hashes, tokens, documents, domains, routing
// policy, notes). Clicking a domain selects it.
#include <string>
#include <vector>

#include "gui/views/view.h"

namespace moe::studio {

struct OverviewRow {
  std::string section, key, value;
};

// What the overview lists, in order (also its CSV).
std::vector<OverviewRow> OverviewRows(const StudioData& data);

class OverviewView : public View {
 public:
  const char* Name() const override { return "overview"; }
  const char* Title() const override { return "Overview"; }
  void Draw(const StudioData& data, Selection& selection) override;
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;
};

}  // namespace moe::studio
