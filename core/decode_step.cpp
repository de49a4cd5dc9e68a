#include "core/decode_step.h"

#include <omp.h>

#include <algorithm>

#include "core/attention.h"
#include "core/linear.h"
#include "core/moe_layer.h"
#include "core/ops.h"
#include "core/rope.h"
#include "core/scratch_buffer.h"

namespace moe {
namespace {

// Every matrix a layer's step multiplies by.
std::vector<const Matrix*> LayerMatrices(const LayerWeights& w) {
  std::vector<const Matrix*> m{
      &w.q, &w.k, &w.v, &w.o, &w.router_in, &w.router_out, &w.shared_expert_gate};
  m.insert(m.end(), {&w.shared_expert.gate, &w.shared_expert.up, &w.shared_expert.down});
  for (const ExpertWeights& e : w.experts)
    for (const Matrix* x : {&e.gate, &e.up, &e.down}) m.push_back(x);
  std::erase_if(m, [](const Matrix* x) { return x->empty(); });
  return m;
}

// Memory the threads share: each buffer is written by one worksharing loop and read by every
// thread after the barrier that ends it. One token, so every row count below is 1.
struct SharedBuffers {
  float* q;     // [nh * d]   the projections, before bias and RoPE
  float* k;     // [nkv * d]
  float* v;     // [nkv * d]
  float* attn;  // [nh * d]   attention output of every head
  float* o;     // [H]        o_proj output
  float* gate;  // [F_sel + F_shared]  gate products of the chosen experts, then the shared one's
  float* up;    // [F_sel + F_shared]
  float* y;     // [(n_sel + 1) * H]  each chosen expert's output, then the shared expert's
};

// One thread's own copies: the residual stream and what is derived from it between barriers.
struct ThreadState {
  std::vector<float> x;        // [H] residual stream
  std::vector<float> normed;   // [H]
  std::vector<float> q, k, v;  // [nh * d], [nkv * d], [nkv * d] after bias, norms and RoPE
  std::vector<float> delta;    // [H] a block's output
  std::vector<float> act;      // [F_sel + F_shared] SiLU(gate) * up
  std::vector<float> shared;   // [H] the shared expert's output, gated
};

// Output rows of `products` shared out among the team: each thread takes a contiguous stretch,
// as the general path's parallel loop does. Ends with the team's barrier.
void ComputeShared(const StreamedRows& products, const float* x) {
#pragma omp for schedule(static)
  for (int64_t o = 0; o < products.count(); ++o) products.Compute(o, x, 1, /*accumulate=*/false);
}

void Attention(const ModelConfig& c, const LayerWeights& w, int layer, const Batch& batch,
               const Rope& rope, KvCache& cache, const SharedBuffers& s, ThreadState& t) {
  const int64_t H = c.hidden_size, P = cache.length();
  const int nh = c.num_attention_heads, nkv = c.num_key_value_heads, d = c.head_dim();
  const int n_rep = nh / nkv;
  RmsNorm(t.x.data(), 1, H, w.input_norm, c.rms_norm_eps, t.normed.data());
  const MatMulTarget qkv[] = {{&w.q, s.q}, {&w.k, s.k}, {&w.v, s.v}};
  ComputeShared(StreamedRows(qkv), t.normed.data());

  std::copy(s.q, s.q + nh * d, t.q.begin());
  std::copy(s.k, s.k + nkv * d, t.k.begin());
  std::copy(s.v, s.v + nkv * d, t.v.begin());
  PrepareQueriesAndKeys(c, w, 1, rope, batch.positions.data(), t.q.data(), t.k.data(), t.v.data());
  // A KV head's key and value are stored by the thread that attends with it: no thread reads
  // what another writes before the barrier.
#pragma omp for schedule(static)
  for (int kvh = 0; kvh < nkv; ++kvh) {
    cache.Store(layer, 0, kvh, P, t.k.data() + kvh * d, t.v.data() + kvh * d);
    for (int h = kvh * n_rep; h < (kvh + 1) * n_rep; ++h)
      AttendHead(c, layer, cache, 1, t.q.data(), 0, h, s.attn);
  }

  const MatMulTarget o[] = {{&w.o, s.o}};
  ComputeShared(StreamedRows(o), s.attn);
  std::copy(s.o, s.o + H, t.delta.begin());
  AddBias(t.delta.data(), 1, w.o_bias);
  AddResidual(t.delta.data(), c.residual_multiplier, H, t.x.data());
}

void Experts(const ModelConfig& c, const LayerWeights& w, int layer, const TokenSpan& span,
             const RoutingPolicy* policy, const SharedBuffers& s, ThreadState& t) {
  const int64_t H = c.hidden_size;
  RmsNorm(t.x.data(), 1, H, w.post_attention_norm, c.rms_norm_eps, t.normed.data());
  const bool moe = c.IsMoeLayer(layer);
  Routing r = DenseRouting(1);
  if (moe) {
    std::vector<float> logits(static_cast<size_t>(c.num_experts));  // [E]
    RouterLogits(c, w, t.normed.data(), 1, logits.data());
    r = SelectExperts(c, layer, std::move(logits), span, policy, w.selection_bias);
  }
  const ExpertAssignments assigned = GroupByExpert(r, static_cast<int>(w.experts.size()));
  const LayerPolicy* lp = policy ? policy->Layer(layer) : nullptr;
  const bool shared = moe && c.shared_expert_width > 0 && !(lp && lp->shared_expert_disabled);

  // The chosen experts in ascending order, each one's intermediate at offset[i], then the
  // shared expert's.
  std::vector<int> selected;
  std::vector<int64_t> offset{0};
  for (size_t e = 0; e < w.experts.size(); ++e) {
    if (assigned.rows[e].empty()) continue;
    selected.push_back(static_cast<int>(e));
    offset.push_back(offset.back() + w.experts[e].gate.rows);
  }
  const int64_t f_sel = offset.back(), f_shared = shared ? c.shared_expert_width : 0;
  const size_t n_sel = selected.size();
  std::vector<MatMulTarget> gate_up, down;
  for (size_t i = 0; i < n_sel; ++i) {
    const ExpertWeights& ew = w.experts[selected[i]];
    gate_up.push_back({&ew.gate, s.gate + offset[i]});
    gate_up.push_back({&ew.up, s.up + offset[i]});
    down.push_back({&ew.down, s.y + i * H, t.act.data() + offset[i]});
  }
  if (shared) {
    const ExpertWeights& sw = w.shared_expert;
    gate_up.push_back({&sw.gate, s.gate + f_sel});
    gate_up.push_back({&sw.up, s.up + f_sel});
    down.push_back({&sw.down, s.y + n_sel * H, t.act.data() + f_sel});
  }
  ComputeShared(StreamedRows(gate_up), t.normed.data());
  // SiLU over the same stretches as the general path (its vector and scalar parts fall on the
  // same elements, so every bit matches).
  std::copy(s.gate, s.gate + f_sel + f_shared, t.act.begin());
  SiluMul(t.act.data(), s.up, f_sel);
  if (shared) SiluMul(t.act.data() + f_sel, s.up + f_sel, f_shared);
  ComputeShared(StreamedRows(down), nullptr);

  std::fill(t.delta.begin(), t.delta.end(), 0.0f);
  for (size_t i = 0; i < n_sel; ++i)
    AddWeightedRows(assigned.rows[selected[i]], assigned.coef[selected[i]], s.y + i * H, H,
                    t.delta.data());
  if (shared) {
    std::copy(s.y + n_sel * H, s.y + (n_sel + 1) * H, t.shared.begin());
    float g;
    GateSharedExpert(c, w, t.normed.data(), 1, t.shared.data(), &g);
    for (int64_t i = 0; i < H; ++i) t.delta[i] += t.shared[i];
  }
  AddResidual(t.delta.data(), c.residual_multiplier, H, t.x.data());
}

}  // namespace

OneRegionDecodePlan PlanOneRegionDecode(const ModelConfig& c, const ModelWeights& weights) {
  OneRegionDecodePlan plan;
  std::vector<const Matrix*> all;  // every product, to check they stream in one dtype
  for (const LayerWeights& w : weights.layers) {
    for (const Matrix* m : LayerMatrices(w)) all.push_back(m);
    int64_t sum = c.shared_expert_width;
    for (const ExpertWeights& e : w.experts) sum += e.gate.rows;
    plan.intermediate = std::max(plan.intermediate, sum);
    plan.outputs = std::max(plan.outputs, static_cast<int64_t>(w.experts.size()) + 1);
  }
  const DType dtype = all.empty() ? DType::kF32 : all.front()->dtype;
  plan.weights_stream =
      (dtype == DType::kBF16 || dtype == DType::kF16) &&
      std::all_of(all.begin(), all.end(), [&](const Matrix* m) { return m->dtype == dtype; });
  return plan;
}

bool DecodesInOneRegion(const OneRegionDecodePlan& plan, const Batch& batch,
                        const HookRegistry& hooks, const RoutingPolicy* policy) {
  if (batch.batch_size != 1 || batch.seq_len != 1 || omp_get_max_threads() < 2 ||
      omp_in_parallel() || !hooks.Empty())
    return false;
  if (policy && (!policy->forced.empty() || policy->routes)) return false;
  return plan.weights_stream;
}

void DecodeLayersInOneRegion(const ModelConfig& c, const ModelWeights& weights,
                             const OneRegionDecodePlan& plan, int first, int last,
                             const Batch& batch, const TokenSpan& span, const RoutingPolicy* policy,
                             KvCache& cache, std::vector<float>& hidden) {
  if (first >= last) return;
  const int64_t H = c.hidden_size;
  const int64_t qd = int64_t{c.num_attention_heads} * c.head_dim();
  const int64_t kvd = int64_t{c.num_key_value_heads} * c.head_dim();
  if (policy) policy->Validate(c);  // a policy error is thrown here, not inside the region
  const Rope rope(c, cache.length() + 1);
  cache.key_mask(0)[cache.length()] = batch.mask[0] != 0;

  thread_local ScratchBuffer<float> q, k, v, attn, o, gate, up, y;
  const SharedBuffers s{q.Get(qd),
                        k.Get(kvd),
                        v.Get(kvd),
                        attn.Get(qd),
                        o.Get(H),
                        gate.Get(plan.intermediate),
                        up.Get(plan.intermediate),
                        y.Get(plan.outputs * H)};
#pragma omp parallel
  {
    ThreadState t;
    t.x = hidden;
    t.normed.resize(H);
    t.q.resize(qd);
    t.k.resize(kvd);
    t.v.resize(kvd);
    t.delta.resize(H);
    t.act.resize(plan.intermediate);
    t.shared.resize(H);
    for (int l = first; l < last; ++l) {
      Attention(c, weights.layers[l], l, batch, rope, cache, s, t);
      Experts(c, weights.layers[l], l, span, policy, s, t);
    }
#pragma omp master
    hidden = t.x;
  }
}

}  // namespace moe
