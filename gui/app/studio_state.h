#pragma once
// The shell's shared state: the data every view reads and the one selection they share
// (hotspot's FilterAndZoomStack idea): widgets report edits, everyone else redraws.
#include <QObject>
#include <memory>

#include "gui/model/studio_data.h"
#include "gui/views/selection.h"

namespace moe::studio {

class StudioState : public QObject {
  Q_OBJECT
 public:
  explicit StudioState(QObject* parent = nullptr);

  const StudioData& data() const { return *data_; }
  Selection& selection() { return selection_; }
  const Selection& selection() const { return selection_; }

  // Replaces everything (a trace was opened); resets the selection to fit the new data.
  void SetData(std::shared_ptr<StudioData> data);
  // Replaces everything with a newer load of the same trace (a trace still being written was
  // refreshed): the selection stays, clamped to what the new data holds.
  void RefreshData(std::shared_ptr<StudioData> data);
  // Replaces the results of prune-curve, cache-sim and replay the views show (no trace needed).
  void SetResults(ResultsData results);
  // Replaces the loaded document (the token map's rows).
  void SetDocument(std::shared_ptr<const DocumentRouting> document);
  // A widget changed the selection during its frame.
  void NotifySelectionEdited(QObject* source);

 Q_SIGNALS:
  void dataChanged();
  void selectionChanged(QObject* source);

 private:
  std::shared_ptr<StudioData> data_;
  Selection selection_;
};

}  // namespace moe::studio
