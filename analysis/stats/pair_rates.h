#pragma once
// Rates of the statistics report's expert-pair tables (docs/routing-metrics.md §2.7; StatsReport's
// coactivation [M+1, L, E, E] and transitions [M+1, L-1, E, E]), one [E, E] block at a time:
// the conditional rates stats_export writes as p_j_given_i, and the symmetric co-activation
// similarity seriation orders experts by. Used by moescope-studio's co-activation view.
#include <cstdint>
#include <span>
#include <vector>

namespace moe {

// P(j | i) = count_ij / c_i within one layer, c_i the diagonal (tokens routed to i): [E, E],
// NaN on the diagonal and in rows of experts no token was routed to.
std::vector<double> CoactivationRates(std::span<const int64_t> coactivation, int experts);

// The Ochiai coefficient count_ij / sqrt(c_i c_j): symmetric, 1 on the diagonal of routed
// experts, 0 where either expert got no token.
std::vector<double> CoactivationSimilarity(std::span<const int64_t> coactivation, int experts);

// P(j in S_{l+1} | i in S_l) = transitions_ij / c_i, with c_i the diagonal of layer l's
// co-activation block: [E, E], NaN in rows of experts no token was routed to at layer l.
std::vector<double> TransitionRates(std::span<const int64_t> transitions,
                                    std::span<const int64_t> coactivation_from, int experts);

}  // namespace moe
