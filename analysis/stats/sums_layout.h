#pragma once
#include <cstdint>
#include <vector>
// The layout of the mergeable sums behind every bootstrapped routing statistic: one slice of
// doubles per domain, all of them sums over tokens (or token pairs, or logit rows), so slices of
// shards add up and the "all domains" slice is the sum of the domain slices. Metric
// definitions (metrics.h) are functions of one slice, which is what lets the same code
// compute point estimates, bootstrap replicates and permutation replicates.
#include <cstddef>

namespace moe {

// Dimensions of a statistics run. K is the trace's top_k (kmax), the K of every uniform
// baseline in docs/routing-metrics.md §2.
struct StatsShape {
  int domains = 0, layers = 0, experts = 0, top_k = 0;
  int vocab = 0;  // token ids are < vocab; 0 = no vocabulary tables
  // [layers]: 1 = the layer routes, 0 = dense (no router; its rows are left out of the report).
  // Empty = every layer routes.
  std::vector<uint8_t> moe_layers;
  bool Routes(int layer) const { return moe_layers.empty() || moe_layers[layer] != 0; }
};

// Token distances of the repetition profile beyond adjacent pairs (§2.8; distance 1 is
// repeat_first itself).
inline constexpr int kRepeatDistances[] = {2, 4, 8, 16, 32, 64};
inline constexpr int kRepeatDistanceCount = 6;
inline constexpr int kMaxRepeatDistance = 64;

// Offsets into one domain's slice. Counts follow §2.1 (c_{l,e}: tokens whose executed set S
// holds e with a weight > 0, as trace /stats/load and upstream gate_load count them).
struct SliceLayout {
  explicit SliceLayout(const StatsShape& s) : L(s.layers), E(s.experts) {}
  int L, E;
  static constexpr size_t kDocs = 0, kTokens = 1, kPairs = 2, kLogitRows = 3;
  size_t le() const { return static_cast<size_t>(L) * E; }
  size_t Cell(int l, int e) const { return static_cast<size_t>(l) * E + e; }
  // [L, E] blocks
  size_t count_topk() const { return 4; }             // c_{l,e}
  size_t count_top1() const { return 4 + le(); }      // first-choice counts
  size_t importance() const { return 4 + 2 * le(); }  // sum of w_{t,l,e} (§2.1)
  size_t soft_load() const { return 4 + 3 * le(); }   // sum of p_{t,l,e} over logit rows
  // The permutation replicates keep only the entries before importance(): the counts of
  // tokens and both count blocks, which is all the specialization test reads.
  size_t permutation_size() const { return importance(); }
  // [L] blocks
  size_t same_first() const { return 4 + 4 * le(); }         // pairs with e1_t = e1_{t+1} (§2.8)
  size_t any_overlap() const { return same_first() + L; }    // pairs with S_t ∩ S_{t+1} ≠ ∅
  size_t overlap() const { return same_first() + 2 * L; }    // sum of |S_t ∩ S_{t+1}|
  size_t entropy() const { return same_first() + 3 * L; }    // sum of H_{t,l} (§2.3, derived)
  size_t topk_mass() const { return same_first() + 4 * L; }  // sum of m_{t,l}
  size_t margin() const { return same_first() + 5 * L; }     // sum of δ_{t,l}, rows with one
  size_t margin_rows() const { return same_first() + 6 * L; }
  size_t z_loss() const { return same_first() + 7 * L; }  // sum of (log Σ exp z)^2
  // What the three repetition counts would be if each document's tokens were shuffled
  // (the per-document baseline, §2.8): the expected same-first, any-overlap and overlap counts
  // over the document's adjacent pairs, summed over documents.
  size_t doc_same_first() const { return same_first() + 8 * L; }
  size_t doc_any_overlap() const { return same_first() + 9 * L; }
  size_t doc_overlap() const { return same_first() + 10 * L; }
  // [L, kRepeatDistanceCount]: token pairs d apart in one document with the same first choice
  size_t same_first_at() const { return same_first() + 11 * L; }
  // [kRepeatDistanceCount]: token pairs d apart in one document
  size_t pairs_at() const {
    return same_first_at() + static_cast<size_t>(L) * kRepeatDistanceCount;
  }
  size_t size() const { return pairs_at() + kRepeatDistanceCount; }
};

}  // namespace moe
