#pragma once
// Per-domain expert load and importance, the /stats datasets of a trace: [M+1, L, E], row m < M
// for domain m and row M for all domains together.
//   load[m, l, e]       = tokens of domain m whose executed selection at layer l holds e with a
//                         weight > 0 (upstream's gate_load; with softmax gates every selection
//                         counts, so each layer's row sums to K x tokens)
//   importance[m, l, e] = sum of those tokens' combine weights for e (before the scale factor;
//                         upstream's gate_importance)
// Sums of counts, so statistics of shards and of resumed runs add up exactly.
#include <cstdint>
#include <vector>

namespace moe {

class ExpertStats {
 public:
  ExpertStats() = default;
  ExpertStats(int domains, int layers, int experts);

  // One token of `domain`: ids and weights [L, kmax], -1 ids pad.
  void AddToken(int domain, const int16_t* ids, const float* weights, int kmax);
  void Merge(const ExpertStats& other);

  int domains() const { return domains_; }
  int layers() const { return layers_; }
  int experts() const { return experts_; }
  const std::vector<int64_t>& load() const { return load_; }             // [M+1, L, E]
  const std::vector<double>& importance() const { return importance_; }  // [M+1, L, E]
  std::vector<int64_t>& load() { return load_; }
  std::vector<double>& importance() { return importance_; }

 private:
  int domains_ = 0, layers_ = 0, experts_ = 0;
  std::vector<int64_t> load_;
  std::vector<double> importance_;
};

}  // namespace moe
