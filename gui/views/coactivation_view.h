#pragma once
// Co-activation and transitions: at the selected layer, an expert x expert heatmap of how often
// experts are chosen together (P(j | i) within the layer) or one after the other
// (P(j at l+1 | i at l)), from the statistics report's pair tables. With "seriate" on, rows and
// columns follow the loader's seriation order, so experts that route alike sit side by side
// and blocks show along the diagonal. Hover shows the rate and counts; a click selects the row's
// expert, Ctrl+click adds it.
#include <vector>

#include "gui/views/colors.h"
#include "gui/views/heatmap.h"
#include "gui/views/view.h"

namespace moe::studio {

class CoactivationView : public View {
 public:
  enum class Mode { kCoactivation, kTransitions };

  const char* Name() const override { return "coactivation"; }
  const char* Title() const override { return "Co-activation and transitions"; }
  void Draw(const StudioData& data, Selection& selection) override;
  // Both tables, every domain row and layer: the rate, the counts and each expert's position
  // in the seriation order.
  void WriteCsv(const StudioData& data, const Selection& selection,
                std::ostream& out) const override;

  void set_mode(Mode mode) { mode_ = mode; }
  void set_seriate(bool on) { seriate_ = on; }
  // The experts of the rows and columns of the last frame's heatmap, top to bottom and left to
  // right (the seriation order, or 0..E-1 with seriation off).
  const std::vector<int>& row_experts() const { return rows_; }
  const std::vector<int>& col_experts() const { return cols_; }
  // The layer of the rows in the last frame (columns: this layer, or the next for transitions).
  int shown_layer() const { return layer_; }
  const HeatmapHit& last_heatmap() const { return last_; }
  // The rate behind cell (row expert i, column expert j) for the domain row and layer shown.
  static double Rate(const PairTables& t, Mode mode, int domain_row, int layer, int i, int j);
  // Sequential from 0 to the largest rate of the block shown.
  static ColorScale ScaleFor(const PairTables& t, Mode mode, int domain_row, int layer);

 private:
  void DrawControls(const StudioData& d, Selection& sel);
  void DrawTooltip(const StudioData& d, int row, int i, int j) const;

  Mode mode_ = Mode::kCoactivation;
  bool seriate_ = true;
  std::vector<int> rows_, cols_;
  int layer_ = 0;
  HeatmapHit last_;
};

}  // namespace moe::studio
