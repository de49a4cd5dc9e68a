#pragma once
// `moescope compare A.h5 B.h5`: how routing differs between two traces over the same tokens (two
// checkpoints, a quantized model, a routing policy against the baseline); docs/routing-metrics.md
// §2.6 (router saturation, load drift) and §4, item 13. A is the reference. Per layer, split by
// domain and by A's top-k boundary margin (which needs A's router logits):
//   flip_rate_top1  = P[e1_A != e1_B]
//   topk_overlap    = (1/N) Σ_t |S_A ∩ S_B| / K_A      (OLMoE router saturation, §2.6)
//   topk_jaccard    = (1/N) Σ_t |S_A ∩ S_B| / |S_A ∪ S_B|
//   load_cosine     = cos(c_A, c_B) over experts (Megatron's drift, §2.6)
//   load_tv         = ½ Σ_e |c_A/Σc_A − c_B/Σc_B|
//   share_a/b/delta = c/(N·K) of each trace (expert rows)
//   flip_rate_by_margin = flip_rate_top1 of the tokens whose A margin z_(k) − z_(k+1) lies in a bin
// The margin bins are, per layer, quantile bins of A's margins (default) or fixed edges. The
// rates that are ratios of per-document sums (flip rates, overlap, Jaccard) get a confidence
// interval over documents: a cluster-robust ratio (linearization) interval with Student's t on
// G − 1 degrees of freedom, G = documents with a nonzero denominator.
// The traces are read in blocks side by side, so memory does not grow with their length (the
// quantile edges keep one margin per sampled logit row and layer, at most kMaxQuantileRows rows).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

struct CompareOptions {
  // Margin bins of flip_rate_by_margin (A's logit margin; the last bin is open-ended). Empty:
  // per layer, `margin_bins` quantile bins of A's margins at that layer (edges that ties make
  // equal are merged, so a layer may get fewer bins). Otherwise these fixed edges at every layer.
  std::vector<double> margin_edges;
  int margin_bins = 10;
  double ci_level = 0.95;    // level of the intervals over documents
  bool token_flips = false;  // keep the per-token top-1 flip matrix [N, L]
};

// Quantile edges come from at most this many of A's logit rows (every s-th row beyond it).
inline constexpr int64_t kMaxQuantileRows = int64_t{1} << 18;

// The metrics of a comparison (the header above); the files name them by CompareMetricName.
enum class CompareMetric {
  kTokens,
  kFlipRateTop1,
  kTopkOverlap,
  kTopkJaccard,
  kLoadCosine,
  kLoadTv,
  kShareA,
  kShareB,
  kShareDelta,
  kFlipRateByMargin,  // one row per margin bin of A
};
const char* CompareMetricName(CompareMetric metric);  // "flip_rate_top1", ...

struct CompareRow {
  int layer = 0, expert = -1, domain = 0;  // domain M = all
  CompareMetric metric = CompareMetric::kTokens;
  double value = 0, n = 0;
  double bin_low = 0, bin_high = 0;  // margin bin of flip_rate_by_margin; NaN otherwise
  // Interval over documents (flip rates, overlap, Jaccard); NaN for the other metrics and when
  // fewer than two documents have a nonzero denominator.
  double ci_low = 0, ci_high = 0;
  int64_t documents = 0;  // G: documents with a nonzero denominator (0 where no interval applies)
};

struct CompareReport {
  std::string a, b;
  int layers = 0, experts = 0, top_k_a = 0, top_k_b = 0;
  std::vector<std::string> domains;  // M (row M = all)
  int64_t tokens = 0, documents = 0;
  bool has_margin = false;
  std::string note;  // why the margin split is missing, or ""
  // The margin bins used: "quantile" (margin_bins asked) or "fixed"; per layer the bins' lower
  // edges (bin i = [edges[i], edges[i+1]), the last open-ended), and for quantile bins how many
  // of A's margins (of how many logit rows) the quantiles came from.
  std::string margin_binning;
  int margin_bins_requested = 0;
  std::vector<std::vector<double>> margin_edges;  // [L][bins of the layer]
  std::vector<int64_t> margin_samples;            // [L] (quantile bins only)
  int64_t margin_row_stride = 1;                  // quantiles from every s-th logit row
  double ci_level = 0.95;
  std::vector<CompareRow> rows;
  std::vector<uint8_t> token_flips;  // [N, L] 1 where the first choice differs (when asked)

  // The row of (metric, layer, expert, domain) outside the margin bins, or null.
  const CompareRow* Find(CompareMetric metric, int layer, int expert, int domain) const;
  // The flip_rate_by_margin rows of (layer, domain), in bin order.
  std::vector<const CompareRow*> MarginRows(int layer, int domain) const;
};

// The quantile edges of `bins` bins over `margins` (sorted in place): 0, then for j = 1 .. bins−1
// the ⌈j·n/bins⌉-th smallest margin (0-based), each kept only when larger than the edge before.
// With distinct margins every bin [e_j, e_{j+1}) then holds ⌊n/bins⌋ or ⌈n/bins⌉ of them.
std::vector<double> QuantileMarginEdges(std::vector<double>& margins, int bins);

// Throws Error naming B and the field when the traces do not cover the same tokens of the same
// model shape (num_layers, num_experts, /docs/offset, /tokens/id).
CompareReport CompareTraces(const std::filesystem::path& a, const std::filesystem::path& b,
                            const CompareOptions& options = {});

// DIR/compare.csv (layer, expert, domain, metric, value, ci_low, ci_high, n, bin_low, bin_high,
// documents), compare.json (the rows, the margin edges per layer and the interval method), and
// with token flips compare.h5 (/flips [N, L] int8, /margin_edges [L, max bins] NaN-padded).
void ExportCompare(const std::filesystem::path& dir, const CompareReport& report);

// One line per layer (all domains): flip rate and overlap with their intervals, Jaccard, load
// cosine, TV; then, with margins, the flip rate per margin bin of every layer.
std::string FormatCompareTable(const CompareReport& report);

}  // namespace moe
