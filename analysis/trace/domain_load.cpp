#include "analysis/trace/domain_load.h"

#include "core/error.h"

namespace moe {

ExpertStats::ExpertStats(int domains, int layers, int experts)
    : domains_(domains),
      layers_(layers),
      experts_(experts),
      load_(static_cast<size_t>(domains + 1) * layers * experts, 0),
      importance_(load_.size(), 0.0) {}

void ExpertStats::AddToken(int domain, const int16_t* ids, const float* weights, int kmax) {
  if (domain < 0 || domain >= domains_)
    Fail("expert statistics", "domain " + std::to_string(domain) + " is out of range");
  const size_t all = static_cast<size_t>(domains_) * layers_ * experts_;
  const size_t mine = static_cast<size_t>(domain) * layers_ * experts_;
  for (int l = 0; l < layers_; ++l) {
    for (int j = 0; j < kmax; ++j) {
      const int e = ids[l * kmax + j];
      const float w = weights[l * kmax + j];
      if (e < 0 || e >= experts_) continue;
      const size_t cell = static_cast<size_t>(l) * experts_ + e;
      if (w > 0) {
        ++load_[mine + cell];
        ++load_[all + cell];
      }
      importance_[mine + cell] += w;
      importance_[all + cell] += w;
    }
  }
}

void ExpertStats::Merge(const ExpertStats& other) {
  if (other.load_.size() != load_.size())
    Fail("expert statistics", "cannot merge statistics of different shapes");
  for (size_t i = 0; i < load_.size(); ++i) {
    load_[i] += other.load_[i];
    importance_[i] += other.importance_[i];
  }
}

}  // namespace moe
