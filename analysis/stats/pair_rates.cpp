#include "analysis/stats/pair_rates.h"

#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

void CheckBlock(std::span<const int64_t> block, int experts, const char* what) {
  if (experts < 0 || block.size() != static_cast<size_t>(experts) * static_cast<size_t>(experts))
    Fail(what, "the table is not " + std::to_string(experts) + " x " + std::to_string(experts));
}

}  // namespace

std::vector<double> CoactivationRates(std::span<const int64_t> co, int E) {
  CheckBlock(co, E, "co-activation");
  std::vector<double> p(co.size(), kNan);
  for (int i = 0; i < E; ++i) {
    const int64_t ci = co[static_cast<size_t>(i) * E + i];
    if (ci <= 0) continue;
    for (int j = 0; j < E; ++j)
      if (j != i)
        p[static_cast<size_t>(i) * E + j] =
            static_cast<double>(co[static_cast<size_t>(i) * E + j]) / ci;
  }
  return p;
}

std::vector<double> CoactivationSimilarity(std::span<const int64_t> co, int E) {
  CheckBlock(co, E, "co-activation");
  std::vector<double> s(co.size(), 0.0);
  for (int i = 0; i < E; ++i)
    for (int j = 0; j < E; ++j) {
      const double ci = static_cast<double>(co[static_cast<size_t>(i) * E + i]);
      const double cj = static_cast<double>(co[static_cast<size_t>(j) * E + j]);
      if (ci > 0 && cj > 0)
        s[static_cast<size_t>(i) * E + j] =
            static_cast<double>(co[static_cast<size_t>(i) * E + j]) / std::sqrt(ci * cj);
    }
  return s;
}

std::vector<double> TransitionRates(std::span<const int64_t> tr, std::span<const int64_t> co,
                                    int E) {
  CheckBlock(tr, E, "transitions");
  CheckBlock(co, E, "co-activation");
  std::vector<double> p(tr.size(), kNan);
  for (int i = 0; i < E; ++i) {
    const int64_t ci = co[static_cast<size_t>(i) * E + i];
    if (ci <= 0) continue;
    for (int j = 0; j < E; ++j)
      p[static_cast<size_t>(i) * E + j] =
          static_cast<double>(tr[static_cast<size_t>(i) * E + j]) / ci;
  }
  return p;
}

}  // namespace moe
