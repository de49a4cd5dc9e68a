#include "gui/model/studio_loader.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>

#include "analysis/common/sha256.h"
#include "analysis/stats/metrics.h"
#include "analysis/stats/pair_rates.h"
#include "analysis/stats/seriation.h"
#include "analysis/stats/trace_scan.h"
#include "analysis/trace/trace_reader.h"
#include "core/config.h"
#include "core/error.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "core/tokenizer.h"
#include "core/utf8.h"
#include "gui/model/results_loader.h"

namespace moe::studio {
namespace {

// config.json as (key, value) rows; nested values stay JSON.
std::vector<std::pair<std::string, std::string>> FlattenConfig(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (text.empty()) return rows;
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    rows.emplace_back("(config)", text);
    return rows;
  }
  if (!j.is_object()) {
    rows.emplace_back("(config)", text);
    return rows;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    rows.emplace_back(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
  return rows;
}

// The trace's "windowing" attribute (WindowRule::Describe's JSON); unknown when it does not parse
// or lacks a field (e.g. "{}" in hand-built traces).
WindowingFacts ParseWindowing(const std::string& text) {
  WindowingFacts w;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) return w;
    for (const char* key : {"max_window", "stride", "context_length"})
      if (!j.contains(key) || !j[key].is_number_integer()) return w;
    w.max_window = j["max_window"].get<int64_t>();
    w.stride = j["stride"].get<int64_t>();
    w.context_length = j["context_length"].get<int64_t>();
    w.known = true;
  } catch (const nlohmann::json::exception&) {
  }
  return w;
}

// Whether the trace's routing policy changes nothing (core's RoutingPolicy::empty).
bool PolicyIsEmpty(const TraceAttributes& i) {
  if (i.routing_policy.empty() || i.routing_policy == "{}" || i.routing_policy == "null")
    return true;
  try {
    const ModelConfig config = ModelConfig::FromJson(nlohmann::json::parse(i.model_config), i.path);
    return PolicyFromJson(nlohmann::json::parse(i.routing_policy), config, i.path).empty();
  } catch (const std::exception&) {
    return false;  // shown as written
  }
}

// The reader's header with the counts of the statistics' snapshot `set` (the reader, opened
// later, may already see more of a trace being written).
TraceFacts Facts(const TraceReader& reader, const TraceSetInfo& set) {
  TraceFacts f;
  f.info = reader.info();
  f.info.complete = set.incomplete.empty();
  f.policy_empty = PolicyIsEmpty(f.info);
  f.config = FlattenConfig(f.info.model_config);
  f.windowing = ParseWindowing(f.info.windowing);
  f.documents = set.documents;
  f.tokens = set.tokens;
  f.logit_rows = set.logit_rows;
  return f;
}

// The report's rows as dense arrays, one per metric.
void CopyMetrics(const StatsReport& report, StudioData& data) {
  const int M = report.shape.domains, L = report.shape.layers, E = report.shape.experts;
  std::array<int, kMetricCount> expert_slot, layer_slot;
  expert_slot.fill(-1);
  layer_slot.fill(-1);
  for (const MetricDef& d : RoutingMetricDefs()) {
    const size_t m = MetricSlot(d.id);
    if (d.level == MetricLevel::kExpert) {
      ExpertMetric g;
      g.id = d.id;
      g.name = d.name;
      g.description = d.description;
      g.domains = M + 1;
      g.layers = L;
      g.experts = E;
      const size_t cells = static_cast<size_t>(M + 1) * L * E;
      for (auto* v : {&g.value, &g.ci_low, &g.ci_high, &g.baseline, &g.n, &g.q})
        v->assign(cells, kNoValue);
      expert_slot[m] = static_cast<int>(data.expert_metrics.size());
      data.expert_metrics.push_back(std::move(g));
    } else {
      LayerMetric g;
      g.id = d.id;
      g.name = d.name;
      g.description = d.description;
      g.domains = M + 1;
      g.layers = L;
      const size_t cells = static_cast<size_t>(M + 1) * L;
      for (auto* v : {&g.value, &g.ci_low, &g.ci_high, &g.baseline}) v->assign(cells, kNoValue);
      layer_slot[m] = static_cast<int>(data.layer_metrics.size());
      data.layer_metrics.push_back(std::move(g));
    }
  }
  std::array<bool, kMetricCount> seen{};
  for (const StatsRow& r : report.rows) {
    if (r.domain < 0 || r.domain > M || r.layer < 0 || r.layer >= L) continue;
    const size_t m = MetricSlot(r.metric);
    seen[m] = true;
    if (expert_slot[m] >= 0) {
      if (r.expert < 0 || r.expert >= E) continue;
      ExpertMetric& g = data.expert_metrics[expert_slot[m]];
      const size_t i = g.Index(r.domain, r.layer, r.expert);
      g.value[i] = r.value;
      g.ci_low[i] = r.ci_low;
      g.ci_high[i] = r.ci_high;
      g.baseline[i] = r.baseline;
      g.n[i] = r.n;
      g.q[i] = r.q;
    } else if (layer_slot[m] >= 0) {
      LayerMetric& g = data.layer_metrics[layer_slot[m]];
      const size_t i = g.Index(r.domain, r.layer);
      g.value[i] = r.value;
      g.ci_low[i] = r.ci_low;
      g.ci_high[i] = r.ci_high;
      g.baseline[i] = r.baseline;
    }
  }
  // Keep only the metrics the report has (no logits: no entropy; no vocabulary: no vocab_spec).
  std::erase_if(data.expert_metrics,
                [&](const ExpertMetric& g) { return !seen[MetricSlot(g.id)]; });
  std::erase_if(data.layer_metrics, [&](const LayerMetric& g) { return !seen[MetricSlot(g.id)]; });
}

void CopyTopTokens(const VocabSpecialization& v, const Tokenizer* tokenizer, TopTokens& out) {
  out.layers = v.layers;
  out.experts = v.experts;
  out.top_n = v.top_n;
  out.entries.resize(v.top.size());
  for (size_t i = 0; i < v.top.size(); ++i) {
    const TopToken& t = v.top[i];
    TopTokenEntry& e = out.entries[i];
    e.token = t.token;
    e.count = t.count;
    e.occurrences = t.occurrences;
    e.share = t.share;
    if (t.token >= 0) e.text = TokenDisplayText(tokenizer, t.token);
  }
}

// The report's co-activation and transition counts, their rates and seriation orders.
void CopyPairTables(const StatsReport& report, PairTables& out) {
  const int D = report.shape.domains + 1, L = report.shape.layers, E = report.shape.experts;
  const size_t block = static_cast<size_t>(E) * E;
  if (L <= 0 || E <= 0 || report.coactivation.size() != static_cast<size_t>(D) * L * block) return;
  out.domains = D;
  out.layers = L;
  out.experts = E;
  out.coactivation = report.coactivation;
  out.transitions = report.transitions;
  for (int d = 0; d < D; ++d)
    for (int l = 0; l < L; ++l) {
      const std::span<const int64_t> co(report.coactivation.data() + out.CoBlock(d, l), block);
      const std::vector<double> rate = CoactivationRates(co, E);
      out.coactivation_rate.insert(out.coactivation_rate.end(), rate.begin(), rate.end());
      const std::vector<int> order = SeriationOrder(CoactivationSimilarity(co, E), E);
      out.coactivation_order.insert(out.coactivation_order.end(), order.begin(), order.end());
      if (l + 1 == L || report.transitions.size() < out.TransitionBlock(d, l) + block) continue;
      const std::span<const int64_t> tr(report.transitions.data() + out.TransitionBlock(d, l),
                                        block);
      const std::vector<double> t = TransitionRates(tr, co, E);
      out.transition_rate.insert(out.transition_rate.end(), t.begin(), t.end());
      const std::vector<int> rows = SeriationOrder(CosineSimilarity(t, E, E), E);
      const std::vector<int> cols = SeriationOrder(CosineSimilarity(t, E, E, true), E);
      out.transition_row_order.insert(out.transition_row_order.end(), rows.begin(), rows.end());
      out.transition_col_order.insert(out.transition_col_order.end(), cols.begin(), cols.end());
    }
}

}  // namespace

namespace {

// Bytes that are not valid UTF-8 on their own, shown as "<0xNN>" each.
std::string EscapedBytes(const std::string& bytes) {
  std::string out;
  char hex[8];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    out += hex;
  }
  return out;
}

}  // namespace

std::string TokenDisplayText(const Tokenizer* tokenizer, int32_t id) {
  if (tokenizer == nullptr || id < 0 || id >= tokenizer->vocab_size())
    return std::string("#").append(std::to_string(id));
  const std::string bytes = tokenizer->PieceBytes(id);
  return IsValidUtf8(bytes) ? bytes : EscapedBytes(bytes);
}

std::shared_ptr<const Tokenizer> TraceTokenizer(const TraceFacts& trace, std::string* why) {
  auto say = [&](const std::string& s) {
    if (why != nullptr) *why = s;
    return nullptr;
  };
  if (trace.info.model_path.empty()) return say("the trace names no model folder");
  const std::filesystem::path dir(trace.info.model_path);
  const std::filesystem::path file = TokenizerFileOf(dir);
  std::error_code ec;
  if (file.empty() || !std::filesystem::is_regular_file(file, ec))
    return say((dir / "tokenizer.model").string() +
               " (or tokenizer.json) is not there; open the model to see token text");
  try {
    if (!trace.info.tokenizer_sha256.empty() && Sha256OfFile(file) != trace.info.tokenizer_sha256)
      return say(file.string() + " is not the tokenizer the trace was made with (SHA-256 differs)");
    std::shared_ptr<const Tokenizer> t = OpenTokenizerFile(file);
    if (why != nullptr) *why = file.string();
    return t;
  } catch (const std::exception& e) {
    return say(e.what());
  }
}

ModelFacts DescribeModel(const std::filesystem::path& dir, const std::string& config_json) {
  ModelFacts m;
  m.dir = dir.string();
  m.config = FlattenConfig(config_json);
  return m;
}

void UseModel(LoadOptions& options, const std::shared_ptr<const LoadedModel>& model) {
  if (!model) return;
  if (model->tokenizer)
    options.tokenizer = std::shared_ptr<const Tokenizer>(model, model->tokenizer.get());
  std::ifstream in(model->dir / "config.json");
  options.model = DescribeModel(model->dir, std::string((std::istreambuf_iterator<char>(in)), {}));
}

std::shared_ptr<LoadedModel> JobModel(const std::string& dir, const std::string& job,
                                      std::shared_ptr<LoadedModel> reuse) {
  if (dir.empty()) Fail(job, "no model to run: open one (File > Open model)");
  if (reuse && reuse->dir == dir) return reuse;
  return std::make_shared<LoadedModel>(LoadModel(dir));
}

std::vector<std::string> DocumentText(const Tokenizer* tokenizer, const std::vector<int32_t>& ids) {
  std::vector<std::string> text;
  text.reserve(ids.size());
  for (int32_t id : ids) text.push_back(TokenDisplayText(tokenizer, id));
  if (tokenizer == nullptr) return text;
  // A character whose UTF-8 bytes are spread over up to 4 tokens (byte fallback, byte-level
  // BPE): the character on the first token, the others left empty.
  auto bytes_of = [&](size_t t) {
    return ids[t] >= 0 && ids[t] < tokenizer->vocab_size() ? tokenizer->PieceBytes(ids[t])
                                                           : std::string();
  };
  for (size_t t = 0; t < ids.size(); ++t) {
    std::string joined = bytes_of(t);
    if (joined.empty() || IsValidUtf8(joined)) continue;
    for (size_t n = 2; n <= 4 && t + n <= ids.size(); ++n) {
      joined += bytes_of(t + n - 1);
      if (!IsValidUtf8(joined)) continue;
      text[t] = joined;
      for (size_t k = 1; k < n; ++k) text[t + k].clear();
      t += n - 1;
      break;
    }
  }
  return text;
}

std::shared_ptr<const DocumentRouting> LoadDocument(const TraceReader& reader, int64_t document,
                                                    const Tokenizer* tokenizer) {
  if (document < 0 || document >= reader.num_documents())
    Fail(reader.info().path, "document " + std::to_string(document) + " is out of range (" +
                                 std::to_string(reader.num_documents()) + " documents)");
  const TraceDocument d = reader.Document(document);
  auto out = std::make_shared<DocumentRouting>();
  out->index = document;
  out->domain = d.domain;
  const std::vector<std::string> ids = reader.SourceIds(document, 1);
  out->source_id = ids.empty() ? "" : ids.front();
  out->token_begin = d.token_begin;
  TokenRows tokens = reader.ReadTokens(d.token_begin, d.tokens());
  RoutingRows routing = reader.ReadRouting(d.token_begin, d.tokens());
  out->layers = routing.layers;
  out->kmax = routing.kmax;
  out->token_id = std::move(tokens.id);
  out->position = std::move(tokens.position);
  out->nll = std::move(tokens.nll);
  out->ids = std::move(routing.ids);
  out->weights = std::move(routing.weights);
  out->text = DocumentText(tokenizer, out->token_id);
  return out;
}

std::shared_ptr<const DocumentRouting> LoadDocument(const std::filesystem::path& trace,
                                                    int64_t document, const Tokenizer* tokenizer) {
  const TraceReader reader(trace);
  return LoadDocument(reader, document, tokenizer);
}

LoadResult LoadStudioData(const std::filesystem::path& trace, const LoadOptions& options) {
  auto check_cancel = [&] {
    if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
  };
  LoadResult result;
  StudioData& data = result.data;

  // The statistics' snapshot first: a trace still being written is read up to the documents
  // InspectTraces saw, so the document table, the facts and the statistics agree.
  const TraceSetInfo set = InspectTraces({trace});
  const TraceReader reader(trace);
  data.trace = Facts(reader, set);
  data.domains = reader.domains();
  const int64_t D = set.documents;
  const std::vector<std::string> source_ids =
      D > 0 ? reader.SourceIds(0, D) : std::vector<std::string>{};
  data.documents.reserve(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) {
    const TraceDocument doc = reader.Document(d);
    data.documents.push_back({d, doc.domain, doc.tokens(),
                              d < static_cast<int64_t>(source_ids.size()) ? source_ids[d] : ""});
  }
  data.model = options.model;
  result.tokenizer = options.tokenizer;
  if (result.tokenizer) {
    data.model.tokens_from = data.model.dir.empty() ? std::string("the open model")
                                                    : data.model.dir + "/tokenizer.model";
  } else {
    std::string why;
    result.tokenizer = TraceTokenizer(data.trace, &why);
    data.model.tokens_from = result.tokenizer ? why : "token ids (" + why + ")";
  }
  check_cancel();

  // Statistics.
  TraceStatsRun run;
  run.progress = [&](int64_t done, int64_t total) {
    check_cancel();
    if (options.progress) options.progress(total > 0 ? static_cast<double>(done) / total : 1.0);
  };
  const StatsReport report = ComputeStatsReport(set, options.stats, run);
  CopyMetrics(report, data);
  data.ci_level = options.stats.bootstrap > 0 ? options.stats.ci_level : 0;
  data.bootstrap = report.options.bootstrap;
  data.permutations = report.options.permutations;
  data.fdr = report.options.fdr;
  CopyPairTables(report, data.pairs);
  if (report.has_vocabulary)
    CopyTopTokens(report.vocab_input, result.tokenizer.get(), data.top_tokens);

  // Per-domain documents and tokens, from the report's token counts (of the first layer that
  // routes: dense layers have no rows).
  const int M = static_cast<int>(set.domains.size());
  int counted_layer = 0;
  while (counted_layer + 1 < set.shape.layers && !set.shape.Routes(counted_layer)) ++counted_layer;
  for (int m = 0; m < M; ++m) {
    const StatsRow* tokens = report.Find(Metric::kTokens, counted_layer, -1, m);
    data.domain_documents.push_back(tokens != nullptr ? tokens->docs : 0);
    data.domain_tokens.push_back(tokens != nullptr ? static_cast<int64_t>(tokens->value) : 0);
  }

  // Notes.
  if (!data.trace.info.complete)
    data.notes.push_back("the trace is incomplete (complete = 0): its committed prefix is shown");
  if (!report.has_logits)
    data.notes.push_back(
        "no router logits were recorded (trace --record-logits): router entropy, top-k mass, "
        "margin, z-loss and soft load are not available");
  if (!report.has_vocabulary)
    data.notes.push_back(
        "no vocabulary specialization (top tokens per expert)" +
        (set.vocabulary_note.empty() ? std::string() : ": " + set.vocabulary_note));
  if (!result.tokenizer) data.notes.push_back("tokens are shown as ids: " + data.model.tokens_from);

  // Exports of prune-curve, cache-sim and replay kept beside the trace.
  const std::filesystem::path folder = std::filesystem::absolute(trace).parent_path();
  for (const std::filesystem::path& f : FindResults(folder, data.results, result.results_errors))
    data.notes.push_back("results shown from " + f.string());

  if (D > 0) {
    const int64_t first = std::clamp<int64_t>(options.first_document, 0, D - 1);
    data.document = LoadDocument(reader, first, result.tokenizer.get());
  }
  if (options.progress) options.progress(1.0);
  return result;
}

}  // namespace moe::studio
