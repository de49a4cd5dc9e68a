#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace moe {

int32_t Argmax(const float* logits, int64_t n) {
  return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  if (!(options.temperature >= 0)) Fail("sampling", "temperature must be >= 0");
  if (options.top_k < 0) Fail("sampling", "top_k must be >= 0");
  if (!(options.top_p > 0 && options.top_p <= 1)) Fail("sampling", "top_p must be in (0, 1]");
}

int32_t Sampler::Sample(const float* logits, int64_t vocab) {
  if (options_.temperature == 0.0f) return Argmax(logits, vocab);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = options_.top_k > 0 ? std::min<int64_t>(options_.top_k, vocab) : vocab;
  std::vector<double> p(static_cast<size_t>(keep));
  const double top = logits[order[0]];
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp((logits[order[i]] - top) / options_.temperature);
    sum += p[i];
  }
  // Nucleus: the smallest prefix whose mass reaches top_p (at least one token).
  double mass = 0;
  int64_t cut = 0;
  while (cut < keep) {
    mass += p[cut] / sum;
    ++cut;
    if (mass >= options_.top_p) break;
  }
  std::discrete_distribution<int64_t> pick(p.begin(), p.begin() + cut);
  return order[pick(rng_)];
}

}  // namespace moe
