#pragma once
// Multiple-comparison control for the families of tests `moescope stats` reports
// (docs/stats-format.md, "Multiplicity"). A family is every cell one test is run on (e.g. the
// permutation test of domain specialization over all layer × expert × domain cells); its
// p-values are adjusted together.
#include <cstdint>
#include <span>
#include <vector>

namespace moe {

// Benjamini–Hochberg (1995) adjusted p-values ("q-values"): q_(i) = min over j >= i of
// m p_(j) / j on the ascending order, capped at 1, where m counts the non-NaN p-values (NaN
// entries are not tests and stay NaN). Rejecting every q <= α controls the false discovery rate
// at α for independent or positively dependent tests.
std::vector<double> BenjaminiHochberg(std::span<const double> p);

// Monte-Carlo permutations so that the smallest attainable p-value, 1 / (1 + P), lies below the
// Benjamini–Hochberg threshold of a single discovery, α / m, in a family of m tests:
// P = ceil(m / α). Within [min_count, max_count].
int PermutationsForFamily(int64_t family_size, double alpha, int min_count, int max_count);

}  // namespace moe
