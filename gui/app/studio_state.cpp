#include "gui/app/studio_state.h"

#include <algorithm>

namespace moe::studio {

StudioState::StudioState(QObject* parent)
    : QObject(parent), data_(std::make_shared<StudioData>()) {}

void StudioState::SetData(std::shared_ptr<StudioData> data) {
  data_ = data ? std::move(data) : std::make_shared<StudioData>();
  Selection s;
  s.layer = data_->trace.ShownLayer(selection_.layer);
  s.document = data_->document ? data_->document->index : 0;
  selection_ = s;
  Q_EMIT dataChanged();
}

void StudioState::RefreshData(std::shared_ptr<StudioData> data) {
  data_ = data ? std::move(data) : std::make_shared<StudioData>();
  Selection& s = selection_;
  const int L = data_->trace.info.num_layers, E = data_->trace.info.num_experts;
  s.layer = std::clamp(s.layer, 0, std::max(0, L - 1));
  std::erase_if(s.experts, [E](int e) { return e >= E; });
  if (s.domain >= data_->num_domains()) s.domain = -1;
  if (data_->document) {
    s.document = data_->document->index;
    s.token_begin = std::clamp<int64_t>(s.token_begin, 0, data_->document->size());
    s.token_end = std::clamp<int64_t>(s.token_end, s.token_begin, data_->document->size());
  }
  Q_EMIT dataChanged();
}

void StudioState::SetResults(ResultsData results) {
  data_->results = std::move(results);
  Q_EMIT dataChanged();
}

void StudioState::SetDocument(std::shared_ptr<const DocumentRouting> document) {
  data_->document = std::move(document);
  Q_EMIT dataChanged();
}

void StudioState::NotifySelectionEdited(QObject* source) {
  Q_EMIT selectionChanged(source);
}

}  // namespace moe::studio
