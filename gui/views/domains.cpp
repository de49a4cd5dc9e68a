#include "gui/views/domains.h"

#include <imgui.h>

namespace moe::studio {

std::string DomainName(const StudioData& d, int row) {
  return row >= 0 && row < d.num_domains() ? d.domains[row] : std::string("all domains");
}

void DomainCombo(const StudioData& d, Selection& sel, float width) {
  ImGui::SetNextItemWidth(width);
  if (!ImGui::BeginCombo("domain", DomainName(d, DomainRow(d, sel.domain)).c_str())) return;
  if (ImGui::Selectable("all domains", sel.domain < 0)) sel.domain = -1;
  for (int m = 0; m < d.num_domains(); ++m)
    if (ImGui::Selectable(d.domains[m].c_str(), sel.domain == m)) sel.domain = m;
  ImGui::EndCombo();
}

}  // namespace moe::studio
