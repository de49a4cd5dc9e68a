#include "analysis/prune/prune_checkpoint.h"

#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/json_value.h"
#include "core/model_weights.h"
#include "core/safetensors_file.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

std::string LayerPrefix(const ModelConfig& c, int l) {
  return BodyPrefix(c) + "layers." + std::to_string(l) + ".";
}

// One expert's gate, up and down matrices, by the family's names (core/model_weights.cpp).
std::array<std::string, 3> ExpertNames(const ModelConfig& c, int l, int e) {
  const std::string p = LayerPrefix(c, l), s = std::to_string(e);
  switch (c.family) {
    case Family::kLlamaMoe: {
      const std::string x = p + "mlp.calculator.experts.";
      return {x + "weight_gate." + s, x + "weight_up." + s, x + "weight_down." + s};
    }
    case Family::kMixtral: {
      const std::string x = p + "block_sparse_moe.experts." + s + ".";
      return {x + "w1.weight", x + "w3.weight", x + "w2.weight"};
    }
    default: {
      const std::string x = p + "mlp.experts." + s + ".";
      return {x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight"};
    }
  }
}

std::string RouterName(const ModelConfig& c, int l) {
  const std::string p = LayerPrefix(c, l);
  switch (c.family) {
    case Family::kLlamaMoe:
      return p + "mlp.gate.gate_network.weight";
    case Family::kMixtral:
      return p + "block_sparse_moe.gate.weight";
    case Family::kGraniteMoe:
      return p + "block_sparse_moe.router.layer.weight";
    default:
      return p + "mlp.gate.weight";
  }
}

const char* CountKey(Family f) {
  switch (f) {
    case Family::kMixtral:
    case Family::kGraniteMoe:
      return "num_local_experts";
    case Family::kDots1:
      return "n_routed_experts";
    default:
      return "num_experts";
  }
}

std::vector<float> Floats(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  ToF32(t.dtype, t.data, v.data(), v.size());
  return v;
}

// Tensors made here: their bytes live as long as the writer.
class NewTensors {
 public:
  TensorView FromFloats(DType dtype, Shape shape, const std::vector<float>& v) {
    std::vector<uint8_t>& b = bytes_.emplace_back(v.size() * DTypeSize(dtype));
    if (dtype == DType::kF32) {
      std::memcpy(b.data(), v.data(), b.size());
    } else {
      auto* out = reinterpret_cast<uint16_t*>(b.data());
      for (size_t i = 0; i < v.size(); ++i)
        out[i] = dtype == DType::kBF16 ? F32ToBF16(v[i]) : F32ToF16(v[i]);
    }
    return {dtype, std::move(shape), b.data()};
  }
  // The first-dimension slices `rows` of t, in that order.
  TensorView Rows(const TensorView& t, const std::vector<int32_t>& rows) {
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(t.shape[0]);
    std::vector<uint8_t>& b = bytes_.emplace_back(row_bytes * rows.size());
    for (size_t i = 0; i < rows.size(); ++i)
      std::memcpy(b.data() + i * row_bytes,
                  static_cast<const uint8_t*>(t.data) + static_cast<size_t>(rows[i]) * row_bytes,
                  row_bytes);
    Shape shape = t.shape;
    shape[0] = static_cast<int64_t>(rows.size());
    return {t.dtype, shape, b.data()};
  }

 private:
  std::deque<std::vector<uint8_t>> bytes_;
};

void CheckPrunable(const ModelConfig& c, const PrunePlan& plan, const PruneWriteOptions& o,
                   const std::string& config_file) {
  if (!c.is_moe) Fail(config_file, "model_type " + c.model_type + " has no experts to prune");
  if (plan.layers != c.num_hidden_layers || plan.experts != c.num_experts)
    Fail("--importance", "plans " + std::to_string(plan.layers) + " layers x " +
                             std::to_string(plan.experts) + " experts; " + config_file + " has " +
                             std::to_string(c.num_hidden_layers) + " x " +
                             std::to_string(c.num_experts));
  if (!plan.Uniform())
    Fail("--global", "removed different numbers of experts in different layers; " + config_file +
                         " holds one expert count for every layer (use --per-layer)");
  if (c.family == Family::kLlamaMoe && c.gate_network == GateNetwork::kMlp)
    Fail(config_file,
         "gate_network is \"mlp\": its hidden layer is num_experts wide, so removing "
         "an expert changes every router logit; only linear gates can be pruned");
  if (c.router_groups > 1)
    Fail(config_file, "n_group is " + std::to_string(c.router_groups) +
                          ": a group-limited router's groups would change; cannot prune");
  if (o.merge && o.routed.size() != static_cast<size_t>(plan.layers) * plan.experts)
    Fail("--merge", "needs the routed-token counts of the importance file");
}

// The pruned config.json.
nlohmann::json PrunedConfig(nlohmann::json j, const ModelConfig& c, const PrunePlan& plan) {
  int kept = c.num_experts;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    if (c.IsMoeLayer(l)) kept = static_cast<int>(plan.kept[static_cast<size_t>(l)].size());
  j[CountKey(c.family)] = kept;
  if (c.family != Family::kLlamaMoe) return j;
  nlohmann::json sizes = nlohmann::json::array();
  int64_t total = -1;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    std::vector<int> widths;
    int64_t sum = 0;
    for (int32_t e : plan.kept[static_cast<size_t>(l)])
      widths.push_back(c.size_experts[static_cast<size_t>(l)][static_cast<size_t>(e)]),
          sum += widths.back();
    if (total >= 0 && sum != total)
      Fail("config.json", "size_experts: the kept experts of layer " + std::to_string(l) + " are " +
                              std::to_string(sum) + " wide, layer 0's " + std::to_string(total) +
                              "; intermediate_size must be one number");
    total = sum;
    sizes.push_back(widths);
  }
  j["size_experts"] = sizes;
  j["intermediate_size"] = total;
  const std::vector<float>& f = c.score_scale_factor;
  if (std::equal(f.begin() + 1, f.end(), f.begin()))
    j["score_scale_factor"] = f.front();
  else
    j["score_scale_factor"] = f;
  return j;
}

}  // namespace

std::vector<MergeAssignment> MergeTargets(int layer, const std::vector<float>& router, int64_t h,
                                          const std::vector<int32_t>& removed,
                                          const std::vector<int32_t>& kept) {
  auto row = [&](int32_t e) { return router.data() + static_cast<size_t>(e) * h; };
  auto norm = [&](int32_t e) {
    double s = 0;
    for (int64_t i = 0; i < h; ++i) s += double(row(e)[i]) * row(e)[i];
    return std::sqrt(s);
  };
  std::vector<MergeAssignment> out;
  for (int32_t r : removed) {
    MergeAssignment best{layer, r, -1, -2.0};
    for (int32_t k : kept) {
      double dot = 0;
      for (int64_t i = 0; i < h; ++i) dot += double(row(r)[i]) * row(k)[i];
      const double n = norm(r) * norm(k);
      const double sim = n > 0 ? dot / n : 0.0;
      if (sim > best.similarity) best.into = k, best.similarity = sim;
    }
    out.push_back(best);
  }
  return out;
}

std::vector<float> WeightedAverage(const std::vector<const float*>& members,
                                   const std::vector<double>& counts, size_t n) {
  double total = 0;
  for (double c : counts) total += c;
  std::vector<double> w(members.size());
  for (size_t m = 0; m < members.size(); ++m)
    w[m] = total > 0 ? counts[m] / total : 1.0 / static_cast<double>(members.size());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    double x = 0;
    for (size_t m = 0; m < members.size(); ++m) x += w[m] * members[m][i];
    out[i] = static_cast<float>(x);
  }
  return out;
}

namespace {

// One MoE layer's experts and router in the pruned checkpoint, into `out`; the old expert tensors
// it replaces into `replaced`.
void PruneLayer(const Checkpoint& ck, const ModelConfig& c, int l, const PrunePlan& plan,
                const PruneWriteOptions& o, NewTensors& made, PruneWriteResult& result,
                std::map<std::string, TensorView>& out, std::set<std::string>& replaced) {
  const std::vector<int32_t>& kept = plan.kept[static_cast<size_t>(l)];
  const std::vector<int32_t>& removed = plan.removed[static_cast<size_t>(l)];
  const int64_t h = c.hidden_size;
  const std::string router = RouterName(c, l);
  const TensorView router_view = ck.Require(router, {c.num_experts, h});
  out[router] = made.Rows(router_view, kept);
  if (c.selection_bias) {
    const std::string bias = LayerPrefix(c, l) + "mlp.gate.e_score_correction_bias";
    out[bias] = made.Rows(ck.Require(bias, {c.num_experts}), kept);
  }
  // Each kept expert's group: itself, then the experts merged into it.
  std::map<int32_t, std::vector<int32_t>> group;
  for (int32_t k : kept) group[k] = {k};
  if (o.merge) {
    const auto widths = c.size_experts[static_cast<size_t>(l)];
    for (const MergeAssignment& m : MergeTargets(l, Floats(router_view), h, removed, kept)) {
      if (widths[static_cast<size_t>(m.removed)] != widths[static_cast<size_t>(m.into)])
        Fail("--merge", "layer " + std::to_string(l) + ": expert " + std::to_string(m.removed) +
                            " and expert " + std::to_string(m.into) + " differ in width");
      group[m.into].push_back(m.removed);
      result.merges.push_back(m);
    }
  }
  auto counts_of = [&](const std::vector<int32_t>& g) {
    std::vector<double> counts;
    for (int32_t e : g)
      counts.push_back(static_cast<double>(o.routed[static_cast<size_t>(l) * c.num_experts + e]));
    return counts;
  };
  // A kept expert's matrix: the old one, or its group's frequency-weighted average.
  auto merged = [&](const std::vector<TensorView>& views, const std::vector<int32_t>& g) {
    if (g.size() == 1) return views[0];
    std::vector<std::vector<float>> f;
    std::vector<const float*> members;
    for (const TensorView& v : views) members.push_back(f.emplace_back(Floats(v)).data());
    return made.FromFloats(views[0].dtype, views[0].shape,
                           WeightedAverage(members, counts_of(g), f[0].size()));
  };
  if (c.family == Family::kGraniteMoe) {
    // Fused [E, 2F, H] and [E, H, F]: slice the first dimension, per kept expert.
    const int64_t f = c.size_experts[static_cast<size_t>(l)][0];
    const std::string b = LayerPrefix(c, l) + "block_sparse_moe.";
    for (auto [name, shape] : {std::pair{b + "input_linear.weight", Shape{c.num_experts, 2 * f, h}},
                               {b + "output_linear.weight", Shape{c.num_experts, h, f}}}) {
      const TensorView all = ck.Require(name, shape);
      std::vector<float> joined;
      for (int32_t k : kept) {
        std::vector<TensorView> views;
        for (int32_t e : group[k]) views.push_back(made.Rows(all, {e}));
        const std::vector<float> v = Floats(merged(views, group[k]));
        joined.insert(joined.end(), v.begin(), v.end());
      }
      Shape pruned = shape;
      pruned[0] = static_cast<int64_t>(kept.size());
      out[name] = made.FromFloats(all.dtype, pruned, joined);
    }
    return;
  }
  for (int e = 0; e < c.num_experts; ++e)
    for (const std::string& name : ExpertNames(c, l, e)) replaced.insert(name);
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::vector<int32_t>& g = group[kept[i]];
    const auto new_names = ExpertNames(c, l, static_cast<int>(i));
    for (size_t m = 0; m < 3; ++m) {
      std::vector<TensorView> views;
      for (int32_t e : g) {
        const std::string name = ExpertNames(c, l, e)[m];
        if (!ck.Contains(name)) Fail(ck.dir().string(), "no tensor " + Quoted(name));
        views.push_back(*ck.Find(name));
      }
      out[new_names[m]] = merged(views, g);
    }
  }
}

}  // namespace

PruneWriteResult WritePrunedCheckpoint(const fs::path& in_dir, const PrunePlan& plan,
                                       const fs::path& out_dir, const PruneWriteOptions& o) {
  const fs::path config_file = in_dir / "config.json";
  const ModelConfig c = ModelConfig::FromFile(config_file);
  CheckPrunable(c, plan, o, config_file.string());
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(in_dir, out_dir, ec))
    Fail(out_dir.string(), "is the input folder; write the pruned checkpoint elsewhere");
  // Weights of another checkpoint left in the folder would be read beside the new file.
  for (const char* other :
       {"model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"})
    if (fs::exists(out_dir / other))
      Fail((out_dir / other).string(), "holds other weights; write into an empty folder");
  const Checkpoint ck(in_dir);

  PruneWriteResult result;
  result.experts_before = c.num_experts;
  result.top_k = c.num_selects;
  result.count_key = CountKey(c.family);
  NewTensors made;
  std::map<std::string, TensorView> out;
  std::set<std::string> replaced;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    if (c.IsMoeLayer(l)) {
      PruneLayer(ck, c, l, plan, o, made, result, out, replaced);
      result.experts_after = static_cast<int>(plan.kept[static_cast<size_t>(l)].size());
    }
  for (const std::string& name : ck.Names())
    if (!replaced.count(name) && !out.count(name)) out[name] = *ck.Find(name);
  result.equals_reroute = !o.merge && (c.router_score != RouterScore::kSoftmax || c.renormalize);

  const nlohmann::json config = PrunedConfig(ReadJsonFile(config_file), c, plan);
  fs::create_directories(out_dir, ec);
  if (ec) Fail(out_dir.string(), "cannot create folder: " + ec.message());
  std::vector<NamedView> tensors;
  for (const auto& [name, view] : out) tensors.push_back({name, view});
  WriteSafetensors((out_dir / "model.safetensors").string(), tensors, {{"format", "pt"}});
  WriteFileAtomically(out_dir / "config.json", config.dump(2) + "\n");
  CopyModelCompanionFiles(in_dir, out_dir);
  return result;
}

}  // namespace moe
