#include "analysis/stats/accumulator.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "analysis/stats/histogram.h"
#include "analysis/stats/multiplicity.h"
#include "analysis/stats/resampling.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr const char* kWhere = "routing statistics";

template <typename T>
void AddInto(std::vector<T>& into, const std::vector<T>& from) {
  if (into.size() != from.size()) Fail(kWhere, "cannot merge statistics of different shapes");
  for (size_t i = 0; i < into.size(); ++i) into[i] += from[i];
}

}  // namespace

StatsOptions ResolveStatsOptions(const StatsShape& shape, const StatsOptions& options) {
  if (options.bootstrap < 0 || options.permutations < -1)
    Fail(kWhere, "bootstrap and permutation counts must be >= 0 (permutations -1: automatic)");
  if (!(options.ci_level > 0 && options.ci_level < 1))
    Fail(kWhere, "the confidence level must be in (0, 1)");
  if (!(options.fdr > 0 && options.fdr < 1))
    Fail(kWhere, "the false discovery rate must be in (0, 1)");
  if (options.min_documents < 2) Fail(kWhere, "intervals need a minimum of at least 2 documents");
  StatsOptions resolved = options;
  if (options.permutations == -1) {
    const SliceLayout layout(shape);
    const size_t per_permutation = static_cast<size_t>(std::max(shape.domains, 1)) *
                                   layout.permutation_size() * sizeof(double);
    const int affordable =
        static_cast<int>(std::min<size_t>(kPermutationBudgetBytes / per_permutation, 1'000'000));
    const int64_t family = int64_t{shape.domains} * shape.layers * shape.experts;
    resolved.permutations = PermutationsForFamily(family, options.fdr, std::min(200, affordable),
                                                  std::max(affordable, 1));
  }
  return resolved;
}

RoutingAccumulator::RoutingAccumulator(const StatsShape& shape, const StatsOptions& options,
                                       std::vector<int16_t> doc_domains)
    : shape_(shape),
      options_(ResolveStatsOptions(shape, options)),
      layout_(shape),
      doc_domains_(std::move(doc_domains)) {
  const int M = shape.domains, L = shape.layers, E = shape.experts, K = shape.top_k;
  if (M < 1 || L < 1 || E < 1 || K < 1)
    Fail(kWhere, "needs at least one domain, layer, expert and selection");
  if (options_.entropy_bins < 1 || options_.margin_bins < 1)
    Fail(kWhere, "histograms need at least one bin");
  if (options_.permutations > 0 && doc_domains_.empty())
    Fail(kWhere, "the permutation test needs the domain of every document");
  for (int16_t m : doc_domains_)
    if (m < 0 || m >= M) Fail(kWhere, "a document label names a domain outside 0..M-1");
  for (int p = 0; p < options_.permutations; ++p)
    permutations_.emplace_back(static_cast<int64_t>(doc_domains_.size()), options_.seed,
                               static_cast<uint64_t>(p));
  slice_size_ = layout_.size();
  const size_t S = slice_size_, ee = static_cast<size_t>(E) * E;
  sums_.assign(static_cast<size_t>(M) * S, 0.0);
  bootstrap_.assign(static_cast<size_t>(options_.bootstrap) * M * S, 0.0);
  permutation_.assign(static_cast<size_t>(options_.permutations) * M * layout_.permutation_size(),
                      0.0);
  coactivation_.assign(static_cast<size_t>(M) * L * ee, 0);
  if (options_.rank_adjacent) adjacent_.assign(coactivation_.size(), 0);
  transitions_.assign(static_cast<size_t>(M) * std::max(L - 1, 0) * ee, 0);
  if (options_.vocabulary && shape.vocab > 0) {
    const size_t cells = static_cast<size_t>(L) * shape.vocab * E;
    vocab_input_.assign(cells, 0);
    vocab_next_.assign(cells, 0);
    input_count_.assign(static_cast<size_t>(shape.vocab), 0);
    next_count_.assign(static_cast<size_t>(shape.vocab), 0);
    if (options_.vocab_predicted) {
      vocab_predicted_.assign(cells, 0);
      predicted_count_.assign(static_cast<size_t>(shape.vocab), 0);
    }
  }
  if (E <= kMaxSetExperts) sets_.resize(static_cast<size_t>(L));
  entropy_hist_.assign(static_cast<size_t>(M) * L * kEntropyDeficitGrid.size(), 0);
  margin_hist_.assign(static_cast<size_t>(M) * L * kMarginGrid.size(), 0);
  partial_.assign(S, 0.0);
  is_touched_.assign(S, 0);
  previous_.assign(static_cast<size_t>(L) * K, -1);
  current_.assign(previous_.size(), -1);
  history_.assign(static_cast<size_t>(kMaxRepeatDistance) * L, -1);
  probabilities_.assign(static_cast<size_t>(E), 0.0);
  sorted_.assign(static_cast<size_t>(E), 0.0f);
}

std::span<const double> RoutingAccumulator::Slice(int domain) const {
  return {sums_.data() + static_cast<size_t>(domain) * slice_size_, slice_size_};
}

std::span<const double> RoutingAccumulator::BootstrapSlice(int replicate, int domain) const {
  const size_t at = (static_cast<size_t>(replicate) * shape_.domains + domain) * slice_size_;
  return {bootstrap_.data() + at, slice_size_};
}

std::span<const double> RoutingAccumulator::PermutationSlice(int replicate, int domain) const {
  const size_t size = layout_.permutation_size();
  const size_t at = (static_cast<size_t>(replicate) * shape_.domains + domain) * size;
  return {permutation_.data() + at, size};
}

size_t RoutingAccumulator::Table(int domain, int layer) const {
  return (static_cast<size_t>(domain) * shape_.layers + layer) * shape_.experts * shape_.experts;
}

void RoutingAccumulator::Add(size_t index, double value) {
  if (!is_touched_[index]) {
    is_touched_[index] = 1;
    touched_.push_back(index);
  }
  partial_[index] += value;
}

void RoutingAccumulator::BeginDocument(int64_t global_doc, int domain) {
  if (open_) Fail(kWhere, "document " + std::to_string(doc_) + " was not ended");
  if (domain < 0 || domain >= shape_.domains)
    Fail(kWhere, "domain " + std::to_string(domain) + " is out of range");
  if (options_.permutations > 0 &&
      (global_doc < 0 || global_doc >= static_cast<int64_t>(doc_domains_.size())))
    Fail(kWhere, "document " + std::to_string(global_doc) + " has no label");
  if (options_.permutations > 0 && doc_domains_[static_cast<size_t>(global_doc)] != domain)
    Fail(kWhere, "document " + std::to_string(global_doc) + " has another domain than its label");
  open_ = true;
  doc_ = global_doc;
  domain_ = domain;
  has_previous_ = false;
  position_ = 0;
  doc_sets_.clear();
  Add(SliceLayout::kDocs, 1.0);
}

void RoutingAccumulator::AddToken(int32_t token_id, const int16_t* ids, const float* weights,
                                  int kmax, const float* logits, int32_t predicted) {
  if (!open_) Fail(kWhere, "a token arrived outside a document");
  if (kmax < 1 || kmax > shape_.top_k)
    Fail(kWhere, "rows of " + std::to_string(kmax) + " selections exceed top_k " +
                     std::to_string(shape_.top_k));
  if (shape_.vocab > 0 && (token_id < 0 || token_id >= shape_.vocab))
    Fail(kWhere, "token id " + std::to_string(token_id) + " is outside the vocabulary of " +
                     std::to_string(shape_.vocab));
  if (predicted < -1 || (shape_.vocab > 0 && predicted >= shape_.vocab))
    Fail(kWhere, "predicted token id " + std::to_string(predicted) +
                     " is outside the vocabulary of " + std::to_string(shape_.vocab));
  ++tokens_;
  Add(SliceLayout::kTokens, 1.0);
  if (has_previous_) Add(SliceLayout::kPairs, 1.0);
  Layers(token_id, predicted, ids, weights, kmax);
  if (logits != nullptr) Logits(logits);
  for (int i = 0; i < kRepeatDistanceCount; ++i)
    if (position_ >= kRepeatDistances[i]) Add(layout_.pairs_at() + i, 1.0);
  previous_.swap(current_);
  has_previous_ = true;
  ++position_;
}

// Counts of one token at every layer (§2.1, §2.5, §2.7, §2.8).
void RoutingAccumulator::Layers(int32_t token_id, int32_t predicted, const int16_t* ids,
                                const float* weights, int kmax) {
  const int L = shape_.layers, E = shape_.experts, K = shape_.top_k;
  const SliceLayout& s = layout_;
  const bool vocab = !vocab_input_.empty();
  if (vocab) {
    ++input_count_[static_cast<size_t>(token_id)];
    if (has_previous_) ++next_count_[static_cast<size_t>(token_id)];
  }
  const bool predicted_row = !vocab_predicted_.empty() && predicted >= 0;
  if (predicted_row) ++predicted_count_[static_cast<size_t>(predicted)];
  for (int l = 0; l < L; ++l) {
    int16_t* set = current_.data() + static_cast<size_t>(l) * K;
    int n = 0;
    for (int j = 0; j < kmax; ++j) {
      const int e = ids[l * kmax + j];
      const float w = weights[l * kmax + j];
      if (e < 0) continue;
      if (e >= E)
        Fail(kWhere, "expert " + std::to_string(e) + " is outside 0.." + std::to_string(E - 1));
      Add(s.importance() + s.Cell(l, e), w);
      if (w > 0) set[n++] = static_cast<int16_t>(e);
    }
    for (int j = n; j < K; ++j) set[j] = -1;
    if (n > 0) Add(s.count_top1() + s.Cell(l, set[0]), 1.0);
    ExecutedSet executed;
    int64_t* co = coactivation_.data() + Table(domain_, l);
    for (int a = 0; a < n; ++a) {
      Add(s.count_topk() + s.Cell(l, set[a]), 1.0);
      executed.Insert(set[a]);
      for (int b = 0; b < n; ++b) ++co[set[a] * E + set[b]];  // a == b: the diagonal c_{l,i}
    }
    if (!adjacent_.empty()) {  // allenai/OLMoE run_moe_analysis.py: pairwise(indices), both ways
      int64_t* adj = adjacent_.data() + Table(domain_, l);
      for (int a = 0; a < n; ++a) ++adj[set[a] * E + set[a]];
      for (int a = 0; a + 1 < n; ++a) {
        ++adj[set[a] * E + set[a + 1]];
        ++adj[set[a + 1] * E + set[a]];
      }
    }
    if (!sets_.empty() && n > 0) ++sets_[static_cast<size_t>(l)][executed];
    if (E <= kMaxSetExperts) doc_sets_.push_back(executed);
    // Same first choice as the token d positions back (the repetition profile, §2.8).
    const int16_t first = n > 0 ? set[0] : int16_t{-1};
    for (int i = 0; i < kRepeatDistanceCount && first >= 0; ++i) {
      const int d = kRepeatDistances[i];
      if (position_ < d) break;
      const int64_t back = (position_ - d) % kMaxRepeatDistance;
      if (history_[static_cast<size_t>(back) * L + l] == first)
        Add(s.same_first_at() + l * kRepeatDistanceCount + i, 1.0);
    }
    history_[static_cast<size_t>(position_ % kMaxRepeatDistance) * L + l] = first;
    if (l > 0) {  // transitions from layer l-1 to l
      const int16_t* below = current_.data() + static_cast<size_t>(l - 1) * K;
      int64_t* tr =
          transitions_.data() + (static_cast<size_t>(domain_) * (L - 1) + (l - 1)) * E * E;
      for (int a = 0; a < K && below[a] >= 0; ++a)
        for (int b = 0; b < n; ++b) ++tr[below[a] * E + set[b]];
    }
    if (vocab) {
      uint32_t* row = vocab_input_.data() + (static_cast<size_t>(l) * shape_.vocab + token_id) * E;
      for (int a = 0; a < n; ++a) ++row[set[a]];
    }
    if (predicted_row) {  // this token's set, under the id it predicts (§2.5 on predictions)
      uint32_t* row =
          vocab_predicted_.data() + (static_cast<size_t>(l) * shape_.vocab + predicted) * E;
      for (int a = 0; a < n; ++a) ++row[set[a]];
    }
    if (has_previous_) {  // the pair (previous token, this token) of one document (§2.8)
      const int16_t* prev = previous_.data() + static_cast<size_t>(l) * K;
      if (vocab) {
        uint32_t* row = vocab_next_.data() + (static_cast<size_t>(l) * shape_.vocab + token_id) * E;
        for (int a = 0; a < K && prev[a] >= 0; ++a) ++row[prev[a]];
      }
      if (n > 0 && prev[0] >= 0 && prev[0] == set[0]) Add(s.same_first() + l, 1.0);
      int overlap = 0;
      for (int a = 0; a < K && prev[a] >= 0; ++a)
        for (int b = 0; b < n; ++b) overlap += prev[a] == set[b];
      if (overlap > 0) {
        Add(s.any_overlap() + l, 1.0);
        Add(s.overlap() + l, overlap);
      }
    }
  }
}

// Derived quantities of all E router logits (§2.3): p = softmax over all E (the model itself
// normalizes over the top-k only, so this is labelled derived), entropy, top-k mass, the
// boundary margin on sorted logits, z-loss, and the soft load P_e (§2.1).
void RoutingAccumulator::Logits(const float* logits) {
  const int L = shape_.layers, E = shape_.experts, K = shape_.top_k;
  const SliceLayout& s = layout_;
  Add(SliceLayout::kLogitRows, 1.0);
  std::vector<float>& sorted = sorted_;
  for (int l = 0; l < L; ++l) {
    const float* z = logits + static_cast<size_t>(l) * E;
    double top = z[0];
    for (int e = 1; e < E; ++e) top = std::max(top, static_cast<double>(z[e]));
    double total = 0;
    for (int e = 0; e < E; ++e) total += probabilities_[e] = std::exp(z[e] - top);
    double entropy = 0;
    for (int e = 0; e < E; ++e) {
      const double p = probabilities_[e] /= total;
      if (p > 0) entropy -= p * std::log(p);
      Add(s.soft_load() + s.Cell(l, e), p);
    }
    const double log_sum = top + std::log(total);
    Add(s.entropy() + l, entropy);
    Add(s.z_loss() + l, log_sum * log_sum);
    // k of this token at this layer: its executed selections (the policy may change k).
    int k = 0;
    for (int j = 0; j < K; ++j) k += current_[static_cast<size_t>(l) * K + j] >= 0;
    std::copy(z, z + E, sorted.begin());
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    double mass = 0;
    for (int e = 0; e < E; ++e)
      if (z[e] >= sorted[static_cast<size_t>(std::max(k, 1) - 1)]) mass += probabilities_[e];
    Add(s.topk_mass() + l, std::min(mass, 1.0));
    const double normalized = E > 1 ? entropy / std::log(static_cast<double>(E)) : 0.0;
    const size_t hist = (static_cast<size_t>(domain_) * L + l);
    ++entropy_hist_[hist * kEntropyDeficitGrid.size() + kEntropyDeficitGrid.Bin(1.0 - normalized)];
    if (k >= 1 && k < E) {
      const double margin = static_cast<double>(sorted[k - 1]) - sorted[k];
      Add(s.margin() + l, margin);
      Add(s.margin_rows() + l, 1.0);
      ++margin_hist_[hist * kMarginGrid.size() + kMarginGrid.Bin(margin)];
    }
  }
}

// What the document's repetition counts would be if its tokens came in a random order: for
// n tokens with first-choice counts c1_e, the expected number of adjacent pairs (out of n - 1)
// with the same first choice is (n-1) Σ_e c1_e (c1_e - 1) / (n (n-1)) = Σ_e c1_e (c1_e - 1) / n;
// the overlap |S_t ∩ S_t'| likewise from the counts c_e; any overlap from the document's
// executed sets (ordered pairs of distinct tokens whose sets meet, / n).
void RoutingAccumulator::AddDocumentBaselines() {
  const int L = shape_.layers, E = shape_.experts;
  const SliceLayout& s = layout_;
  const double n = partial_[SliceLayout::kTokens];
  if (n < 2) return;
  std::vector<std::pair<ExecutedSet, int64_t>> sets;
  std::vector<ExecutedSet> layer_sets;
  for (int l = 0; l < L; ++l) {
    double first = 0, overlap = 0;
    for (int e = 0; e < E; ++e) {
      const double c1 = partial_[s.count_top1() + s.Cell(l, e)];
      const double c = partial_[s.count_topk() + s.Cell(l, e)];
      first += c1 * (c1 - 1);
      overlap += c * (c - 1);
    }
    Add(s.doc_same_first() + l, first / n);
    Add(s.doc_overlap() + l, overlap / n);
    if (doc_sets_.size() != static_cast<size_t>(n) * L) continue;  // E > kMaxSetExperts: no sets
    layer_sets.clear();
    for (size_t t = static_cast<size_t>(l); t < doc_sets_.size(); t += static_cast<size_t>(L))
      layer_sets.push_back(doc_sets_[t]);
    std::sort(layer_sets.begin(), layer_sets.end());
    sets.clear();
    for (const ExecutedSet& m : layer_sets) {
      if (!sets.empty() && sets.back().first == m)
        ++sets.back().second;
      else
        sets.push_back({m, 1});
    }
    double meeting = 0;  // ordered pairs of distinct tokens whose sets share an expert
    for (const auto& [a, ca] : sets)
      for (const auto& [b, cb] : sets)
        if (a.Meets(b)) meeting += static_cast<double>(ca) * (a == b ? cb - 1 : cb);
    Add(s.doc_any_overlap() + l, meeting / n);
  }
}

void RoutingAccumulator::EndDocument() {
  if (!open_) Fail(kWhere, "no document is open");
  AddDocumentBaselines();
  const int M = shape_.domains;
  const size_t S = slice_size_;
  double* mine = sums_.data() + static_cast<size_t>(domain_) * S;
  for (size_t i : touched_) mine[i] += partial_[i];
  for (int b = 0; b < options_.bootstrap; ++b) {
    const int w = PoissonWeight(options_.seed, doc_, b);
    if (w == 0) continue;
    double* rep = bootstrap_.data() + (static_cast<size_t>(b) * M + domain_) * S;
    for (size_t i : touched_) rep[i] += w * partial_[i];
  }
  if (options_.permutations > 0) {
    const size_t P_size = layout_.permutation_size();
    for (int p = 0; p < options_.permutations; ++p) {
      const int label = doc_domains_[static_cast<size_t>(permutations_[p].Apply(doc_))];
      double* rep = permutation_.data() + (static_cast<size_t>(p) * M + label) * P_size;
      for (size_t i : touched_)
        if (i < P_size) rep[i] += partial_[i];
    }
  }
  for (size_t i : touched_) {
    partial_[i] = 0;
    is_touched_[i] = 0;
  }
  touched_.clear();
  open_ = false;
  ++documents_;
}

void RoutingAccumulator::Merge(const RoutingAccumulator& o) {
  if (open_ || o.open_) Fail(kWhere, "cannot merge while a document is open");
  const StatsShape &a = shape_, &b = o.shape_;
  if (a.domains != b.domains || a.layers != b.layers || a.experts != b.experts ||
      a.top_k != b.top_k || a.vocab != b.vocab)
    Fail(kWhere, "cannot merge statistics of different shapes");
  if (options_.seed != o.options_.seed || options_.bootstrap != o.options_.bootstrap ||
      options_.permutations != o.options_.permutations || doc_domains_ != o.doc_domains_)
    Fail(kWhere, "cannot merge statistics made with other seeds, replicates or labels");
  AddInto(sums_, o.sums_);
  AddInto(bootstrap_, o.bootstrap_);
  AddInto(permutation_, o.permutation_);
  AddInto(coactivation_, o.coactivation_);
  AddInto(adjacent_, o.adjacent_);
  AddInto(transitions_, o.transitions_);
  AddInto(vocab_input_, o.vocab_input_);
  AddInto(vocab_next_, o.vocab_next_);
  AddInto(input_count_, o.input_count_);
  AddInto(next_count_, o.next_count_);
  AddInto(vocab_predicted_, o.vocab_predicted_);
  AddInto(predicted_count_, o.predicted_count_);
  AddInto(entropy_hist_, o.entropy_hist_);
  AddInto(margin_hist_, o.margin_hist_);
  for (size_t l = 0; l < sets_.size() && l < o.sets_.size(); ++l)
    for (const auto& [set, count] : o.sets_[l]) sets_[l][set] += count;
  documents_ += o.documents_;
  tokens_ += o.tokens_;
}

}  // namespace moe
