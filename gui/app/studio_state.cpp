#include "gui/app/studio_state.h"

#include <algorithm>

namespace moe::studio {

StudioState::StudioState(QObject* parent)
    : QObject(parent), data_(std::make_shared<StudioData>()) {}

void StudioState::SetData(std::shared_ptr<StudioData> data) {
  data_ = data ? std::move(data) : std::make_shared<StudioData>();
  Selection s;
  s.layer = std::clamp(selection_.layer, 0, std::max(0, data_->trace.num_layers - 1));
  s.document = data_->document ? data_->document->index : 0;
  selection_ = s;
  Q_EMIT dataChanged();
}

void StudioState::SetDocument(std::shared_ptr<const DocumentRouting> document) {
  data_->document = std::move(document);
  Q_EMIT dataChanged();
}

void StudioState::NotifySelectionEdited(QObject* source) { Q_EMIT selectionChanged(source); }

}  // namespace moe::studio
