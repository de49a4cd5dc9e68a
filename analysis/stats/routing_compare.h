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
// The traces are read in blocks side by side, so memory does not grow with their length.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

struct CompareOptions {
  std::vector<double> margin_edges = {0.0, 0.1, 0.25, 0.5, 1.0, 2.0};  // last bin open-ended
  bool token_flips = false;  // keep the per-token top-1 flip matrix [N, L]
};

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
};

struct CompareReport {
  std::string a, b;
  int layers = 0, experts = 0, top_k_a = 0, top_k_b = 0;
  std::vector<std::string> domains;  // M (row M = all)
  int64_t tokens = 0;
  bool has_margin = false;
  std::string note;  // why the margin split is missing, or ""
  std::vector<CompareRow> rows;
  std::vector<uint8_t> token_flips;  // [N, L] 1 where the first choice differs (when asked)

  // The row of (metric, layer, expert, domain) outside the margin bins, or null.
  const CompareRow* Find(CompareMetric metric, int layer, int expert, int domain) const;
};

// Throws Error naming B and the field when the traces do not cover the same tokens of the same
// model shape (num_layers, num_experts, /docs/offset, /tokens/id).
CompareReport CompareTraces(const std::filesystem::path& a, const std::filesystem::path& b,
                            const CompareOptions& options = {});

// DIR/compare.csv (layer, expert, domain, metric, value, n, bin_low, bin_high), compare.json,
// and with token flips compare.h5 (/flips [N, L] int8).
void ExportCompare(const std::filesystem::path& dir, const CompareReport& report);

// One line per layer (all domains): flip rate, overlap, Jaccard, load cosine, TV.
std::string FormatCompareTable(const CompareReport& report);

}  // namespace moe
