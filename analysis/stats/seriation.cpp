#include "analysis/stats/seriation.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace moe {
namespace {

// Symmetric similarity of i and j from a possibly asymmetric matrix, NaN as -infinity.
double Alike(std::span<const double> s, int n, int i, int j) {
  const double a = s[static_cast<size_t>(i) * n + j], b = s[static_cast<size_t>(j) * n + i];
  const double v = (std::isnan(a) ? 0.0 : a) + (std::isnan(b) ? 0.0 : b);
  return std::isnan(a) && std::isnan(b) ? -std::numeric_limits<double>::infinity() : v;
}

}  // namespace

std::vector<int> SeriationOrder(std::span<const double> similarity, int n) {
  if (n < 0 || similarity.size() != static_cast<size_t>(n) * static_cast<size_t>(n))
    Fail("seriation",
         "the similarity matrix is not " + std::to_string(n) + " x " + std::to_string(n));
  std::vector<int> order;
  if (n == 0) return order;
  if (n == 1) return {0};
  // The most similar pair starts the chain.
  int a = 0, b = 1;
  double best = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j)
      if (const double v = Alike(similarity, n, i, j); v > best) {
        best = v;
        a = i;
        b = j;
      }
  std::vector<bool> placed(static_cast<size_t>(n), false);
  std::vector<int> front = {a}, back = {b};  // chain = reversed(front) + back
  placed[a] = placed[b] = true;
  for (int step = 2; step < n; ++step) {
    // The unplaced item most similar to either end; at equal similarity the back end (the
    // chain's tail) and then the lower index win.
    int item = -1;
    bool at_back = true;
    double top = -std::numeric_limits<double>::infinity();
    for (const bool back_end : {true, false}) {
      const int end = back_end ? back.back() : front.back();
      for (int i = 0; i < n; ++i) {
        if (placed[i]) continue;
        const double v = Alike(similarity, n, end, i);
        if (item < 0 || v > top) {
          top = v;
          item = i;
          at_back = back_end;
        }
      }
    }
    placed[item] = true;
    (at_back ? back : front).push_back(item);
  }
  order.assign(front.rbegin(), front.rend());
  order.insert(order.end(), back.begin(), back.end());
  return order;
}

std::vector<double> CosineSimilarity(std::span<const double> m, int rows, int cols,
                                     bool by_columns) {
  if (rows < 0 || cols < 0 || m.size() != static_cast<size_t>(rows) * static_cast<size_t>(cols))
    Fail("seriation", "the matrix is not " + std::to_string(rows) + " x " + std::to_string(cols));
  const int n = by_columns ? cols : rows, len = by_columns ? rows : cols;
  auto at = [&](int item, int k) {
    const double v = by_columns ? m[static_cast<size_t>(k) * cols + item]
                                : m[static_cast<size_t>(item) * cols + k];
    return std::isnan(v) ? 0.0 : v;
  };
  std::vector<double> norm(static_cast<size_t>(n), 0.0);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < len; ++k) norm[i] += at(i, k) * at(i, k);
    norm[i] = std::sqrt(norm[i]);
  }
  std::vector<double> s(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = i; j < n; ++j) {
      if (norm[i] == 0 || norm[j] == 0) continue;
      double dot = 0;
      for (int k = 0; k < len; ++k) dot += at(i, k) * at(j, k);
      s[static_cast<size_t>(i) * n + j] = s[static_cast<size_t>(j) * n + i] =
          dot / (norm[i] * norm[j]);
    }
  return s;
}

}  // namespace moe
