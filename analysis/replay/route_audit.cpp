#include "analysis/replay/route_audit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "analysis/ablation/ablation_estimates.h"
#include "analysis/common/csv_table.h"
#include "analysis/run/window_runner.h"
#include "analysis/stats/resampling.h"
#include "core/activation_precision.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
enum { kTokens, kSetAgree, kTop1Agree, kCounts };  // per (document, layer)

// One window per document, from its first token.
std::vector<TraceWindow> WholeDocuments(const Corpus& corpus, int64_t context) {
  std::vector<TraceWindow> windows;
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    const int64_t n = static_cast<int64_t>(corpus.documents[d].ids.size());
    if (n > context)
      Fail("corpus", "document " + std::to_string(d) + " ('" + corpus.documents[d].source_id +
                         "') has " + std::to_string(n) +
                         " tokens, more than the model's context (" + std::to_string(context) +
                         "); routes are replayed over whole documents (cut them with "
                         "--max-tokens-per-document " +
                         std::to_string(context) + ")");
    windows.push_back({static_cast<int64_t>(d), 0, n, 0, true});
  }
  return windows;
}

std::vector<WindowResult> RunWindows(const MoeModel& model, const Corpus& corpus,
                                     const std::vector<TraceWindow>& windows,
                                     const RoutingPolicy* policy, const AuditOptions& o) {
  const ModelConfig& c = model.config();
  if (policy) policy->Validate(c);
  const int kmax = policy ? policy->MaxSelections(c) : c.num_selects;
  WindowRunner runner(model, policy, kmax, false, o.batch_size);
  return runner.Run(windows, corpus);
}

// The experts of a row (-1 pads left out), and whether two rows agree as sets and at the first.
template <typename A, typename B>
std::pair<bool, bool> Agreement(const A* a, int ka, const B* b, int kb) {
  std::vector<int32_t> sa, sb;
  for (int j = 0; j < ka; ++j)
    if (a[j] >= 0) sa.push_back(static_cast<int32_t>(a[j]));
  for (int j = 0; j < kb; ++j)
    if (b[j] >= 0) sb.push_back(static_cast<int32_t>(b[j]));
  const bool top1 = !sa.empty() && !sb.empty() && sa[0] == sb[0];
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  return {sa == sb, top1};
}

// The shared part of both audits: documents, bootstrap and the estimates from per-document
// counts and NLL sums.
struct AuditBuilder {
  const ModelConfig& c;
  const Corpus& corpus;
  const AuditOptions& o;
  std::vector<int> moe_layers;
  std::vector<double> counts;    // [D, moe layers, kCounts]
  std::vector<double> doc_sums;  // [D, kAblationSums]

  AuditBuilder(const ModelConfig& config, const Corpus& cor, const AuditOptions& options)
      : c(config), corpus(cor), o(options) {
    for (int l = 0; l < c.num_hidden_layers; ++l)
      if (c.IsMoeLayer(l)) moe_layers.push_back(l);
    const size_t D = corpus.documents.size();
    counts.assign(D * moe_layers.size() * kCounts, 0.0);
    doc_sums.assign(D * kAblationSums, 0.0);
  }

  double* Counts(size_t doc, size_t i) {
    return counts.data() + (doc * moe_layers.size() + i) * kCounts;
  }

  // NLL and next-token agreement of B against A for one window's tokens.
  void AddNll(size_t doc, const WindowResult& a, const WindowResult& b) {
    double* s = doc_sums.data() + doc * kAblationSums;
    for (size_t t = 0; t < a.nll.size(); ++t) {
      if (std::isnan(a.nll[t]) || std::isnan(b.nll[t])) continue;
      s[kSumTokens] += 1;
      s[kSumBaseNll] += a.nll[t];
      s[kSumPolicyNll] += b.nll[t];
      s[kSumDeltaNll] += static_cast<double>(b.nll[t]) - a.nll[t];
      s[kSumAgree] += a.predicted[t] == b.predicted[t];
    }
  }

  RouteAudit Finish(std::string reference, std::string subject) const {
    RouteAudit audit;
    audit.reference = std::move(reference);
    audit.subject = std::move(subject);
    audit.domains = corpus.domains;
    audit.documents = static_cast<int64_t>(corpus.documents.size());
    const int64_t D = audit.documents;
    const std::vector<uint8_t> weights = BootstrapWeights(o.bootstrap, D, o.seed);
    std::vector<int16_t> doc_domain;
    for (const CorpusDocument& doc : corpus.documents) doc_domain.push_back(doc.domain);
    AblationPolicy none;
    none.name = audit.subject;
    const AblationResult r =
        EstimatePolicy(none, doc_sums, doc_domain, static_cast<int>(corpus.domains.size()), weights,
                       o.bootstrap, o.ci_level);
    audit.nll = r.domains;
    for (AblationDomainResult& d : audit.nll) d.kl = {kNan, kNan, kNan};
    for (size_t i = 0; i < moe_layers.size(); ++i) {
      LayerAgreement la;
      la.layer = moe_layers[i];
      // Ratio of sums over documents, each bootstrap replicate reweighting whole documents.
      auto rate = [&](const uint8_t* w, int what) {
        double num = 0, den = 0;
        for (int64_t d = 0; d < D; ++d) {
          const double weight = w ? w[d] : 1.0;
          const double* n =
              counts.data() + (static_cast<size_t>(d) * moe_layers.size() + i) * kCounts;
          num += weight * n[what];
          den += weight * n[kTokens];
        }
        return den > 0 ? num / den : kNan;
      };
      for (int64_t d = 0; d < D; ++d)
        la.tokens += static_cast<int64_t>(
            counts[(static_cast<size_t>(d) * moe_layers.size() + i) * kCounts + kTokens]);
      for (auto [what, e] :
           {std::pair{kSetAgree, &la.set_agreement}, std::pair{kTop1Agree, &la.top1_agreement}}) {
        e->value = rate(nullptr, what);
        e->ci_low = e->ci_high = kNan;
        if (o.bootstrap > 0) {
          std::vector<double> reps;
          for (int b = 0; b < o.bootstrap; ++b)
            reps.push_back(rate(weights.data() + static_cast<size_t>(b) * D, what));
          std::tie(e->ci_low, e->ci_high) = PercentileInterval(reps, o.ci_level);
        }
      }
      audit.layers.push_back(la);
    }
    audit.tokens = audit.layers.empty() ? 0 : audit.layers[0].tokens;
    return audit;
  }
};

}  // namespace

RouteAudit AuditImportedRoutes(const MoeModel& model, const Corpus& corpus,
                               const RouteTable& routes, const AuditOptions& o) {
  const ModelConfig& c = model.config();
  if (routes.rows() != corpus.tokens() || routes.doc_offset.size() != corpus.documents.size() + 1)
    Fail("routes", "the route table does not line up with the corpus");
  const std::vector<TraceWindow> windows = WholeDocuments(corpus, c.context_length());
  RoutingPolicy forced;
  forced.routes = std::make_shared<const RouteTable>(routes);
  const std::vector<WindowResult> own = RunWindows(model, corpus, windows, nullptr, o);
  const std::vector<WindowResult> replayed = RunWindows(model, corpus, windows, &forced, o);
  AuditBuilder b(c, corpus, o);
  const int L = c.num_hidden_layers, k_own = c.num_selects;
  for (size_t d = 0; d < windows.size(); ++d) {
    const WindowResult& a = own[d];
    for (size_t t = 0; t < a.position.size(); ++t)
      for (size_t i = 0; i < b.moe_layers.size(); ++i) {
        const int l = b.moe_layers[i];
        const int32_t* route = routes.Find(static_cast<int32_t>(d), a.position[t], l);
        if (route == nullptr) Fail("routes", "internal error: a token without a route row");
        const auto [set, top1] =
            Agreement(a.topk_ids.data() + (t * L + l) * k_own, k_own, route, routes.k);
        double* n = b.Counts(d, i);
        n[kTokens] += 1, n[kSetAgree] += set, n[kTop1Agree] += top1;
      }
    b.AddNll(d, a, replayed[d]);
  }
  return b.Finish("moescope's own routing", "imported routes");
}

RouteTable RecordOwnRoutes(const MoeModel& model, const Corpus& corpus, const AuditOptions& o) {
  const ModelConfig& c = model.config();
  const std::vector<TraceWindow> windows = WholeDocuments(corpus, c.context_length());
  const std::vector<WindowResult> own = RunWindows(model, corpus, windows, nullptr, o);
  RouteTable t;
  t.layers = c.num_hidden_layers;
  t.k = c.num_selects;
  t.doc_offset.push_back(0);
  for (const WindowResult& w : own) {
    t.doc_offset.push_back(t.doc_offset.back() + static_cast<int64_t>(w.position.size()));
    t.ids.insert(t.ids.end(), w.topk_ids.begin(), w.topk_ids.end());
  }
  // Dense layers carry no route (the recorder leaves their rows -1 as well).
  for (int64_t row = 0; row < t.rows(); ++row)
    for (int l = 0; l < t.layers; ++l)
      if (!c.IsMoeLayer(l)) std::fill_n(t.ids.begin() + (row * t.layers + l) * t.k, t.k, -1);
  return t;
}

RouteAudit AuditPrecision(const MoeModel& model, const Corpus& corpus, const AuditOptions& o) {
  const ModelConfig& c = model.config();
  const std::vector<TraceWindow> windows = WholeDocuments(corpus, c.context_length());
  std::vector<WindowResult> f32, bf16;
  {
    const ScopedActivationPrecision p(ActivationPrecision::kF32);
    f32 = RunWindows(model, corpus, windows, nullptr, o);
  }
  {
    const ScopedActivationPrecision p(ActivationPrecision::kBF16);
    bf16 = RunWindows(model, corpus, windows, nullptr, o);
  }
  AuditBuilder b(c, corpus, o);
  const int L = c.num_hidden_layers, k = c.num_selects;
  for (size_t d = 0; d < windows.size(); ++d) {
    for (size_t t = 0; t < f32[d].position.size(); ++t)
      for (size_t i = 0; i < b.moe_layers.size(); ++i) {
        const size_t at = (t * L + static_cast<size_t>(b.moe_layers[i])) * k;
        const auto [set, top1] =
            Agreement(f32[d].topk_ids.data() + at, k, bf16[d].topk_ids.data() + at, k);
        double* n = b.Counts(d, i);
        n[kTokens] += 1, n[kSetAgree] += set, n[kTop1Agree] += top1;
      }
    b.AddNll(d, f32[d], bf16[d]);
  }
  return b.Finish("fp32 activations", "bf16 activations");
}

namespace {

std::string Num(double v, const char* format = "%.4f") {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string Interval(const Estimate& e, const char* format) {
  if (std::isnan(e.ci_low)) return Num(e.value, format);
  return Num(e.value, format) + " [" + Num(e.ci_low, format) + ", " + Num(e.ci_high, format) + "]";
}

}  // namespace

std::string FormatRouteAudit(const RouteAudit& a) {
  std::ostringstream out;
  out << a.subject << " against " << a.reference << " (" << a.documents << " documents, "
      << a.tokens << " tokens; intervals over documents)\n";
  out << "layer  set agreement               top-1 agreement\n";
  for (const LayerAgreement& l : a.layers) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%5d  %-26s  %s\n", l.layer,
                  Interval(l.set_agreement, "%.4f").c_str(),
                  Interval(l.top1_agreement, "%.4f").c_str());
    out << buf;
  }
  out << "domain                 tokens  ΔNLL (nats)                     next-token agreement\n";
  for (size_t m = 0; m < a.nll.size(); ++m) {
    const AblationDomainResult& d = a.nll[m];
    char buf[200];
    std::snprintf(buf, sizeof(buf), "%-20s %8lld  %-30s  %s\n",
                  m < a.domains.size() ? a.domains[m].c_str() : "all",
                  static_cast<long long>(d.tokens), Interval(d.delta_nll, "%+.5f").c_str(),
                  Interval(d.agreement, "%.4f").c_str());
    out << buf;
  }
  return out.str();
}

void WriteRouteAuditCsv(const std::string& path, const std::vector<RouteAudit>& audits) {
  CheckReplaceable(path);
  std::ostringstream out;
  auto number = [](double v) { return Num(v, "%.10g"); };
  out << "audit,layer,domain,metric,value,ci_low,ci_high,n\n";
  for (const RouteAudit& a : audits) {
    const std::string name = a.subject + " vs " + a.reference;
    auto row = [&](int layer, const std::string& domain, const char* metric, const Estimate& e,
                   int64_t n) {
      out << '"' << name << "\"," << layer << ",\"" << domain << "\"," << metric << ','
          << number(e.value) << ',' << number(e.ci_low) << ',' << number(e.ci_high) << ',' << n
          << '\n';
    };
    for (const LayerAgreement& l : a.layers) {
      row(l.layer, "all", "set_agreement", l.set_agreement, l.tokens);
      row(l.layer, "all", "top1_agreement", l.top1_agreement, l.tokens);
    }
    for (size_t m = 0; m < a.nll.size(); ++m) {
      const AblationDomainResult& d = a.nll[m];
      const std::string domain = m < a.domains.size() ? a.domains[m] : "all";
      row(-1, domain, "delta_nll", d.delta_nll, d.tokens);
      row(-1, domain, "next_token_agreement", d.agreement, d.tokens);
      row(-1, domain, "reference_nll", {d.base_nll, kNan, kNan}, d.tokens);
      row(-1, domain, "subject_nll", {d.policy_nll, kNan, kNan}, d.tokens);
    }
  }
  WriteFileAtomically(path, out.str());
}

std::vector<RouteAudit> ReadRouteAuditCsv(const std::filesystem::path& path) {
  const CsvTable t = CsvTable::Read(path);
  const int audit = t.Column("audit"), layer = t.Column("layer"), domain = t.Column("domain"),
            metric = t.Column("metric"), value = t.Column("value"), low = t.Column("ci_low"),
            high = t.Column("ci_high"), n = t.Column("n");
  std::vector<std::string> names;
  std::vector<RouteAudit> audits;
  std::vector<std::vector<std::string>> domain_names;  // [audit] per-domain rows' names, in order
  for (size_t i = 0; i < t.rows(); ++i) {
    const std::string& name = t.Text(i, audit);
    size_t a = static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
    if (a == names.size()) {
      names.push_back(name);
      RouteAudit r;
      const size_t vs = name.find(" vs ");
      r.subject = vs == std::string::npos ? name : name.substr(0, vs);
      r.reference = vs == std::string::npos ? "" : name.substr(vs + 4);
      audits.push_back(r);
      domain_names.emplace_back();
    }
    RouteAudit& r = audits[a];
    const int64_t l = t.Integer(i, layer);
    if (l < -1) throw Error(t.Where(i, layer) + ": " + std::to_string(l) + " is below -1");
    const std::string& m = t.Text(i, metric);
    const Estimate e{t.Number(i, value), t.Number(i, low), t.Number(i, high)};
    const int64_t tokens = t.Integer(i, n);
    if (m == "set_agreement" || m == "top1_agreement") {
      if (l < 0) throw Error(t.Where(i, layer) + ": a per-layer metric needs a layer >= 0");
      auto it = std::find_if(r.layers.begin(), r.layers.end(),
                             [&](const LayerAgreement& x) { return x.layer == l; });
      if (it == r.layers.end()) {
        r.layers.push_back({static_cast<int>(l), tokens, {kNan, kNan, kNan}, {kNan, kNan, kNan}});
        it = r.layers.end() - 1;
      }
      (m == "set_agreement" ? it->set_agreement : it->top1_agreement) = e;
      continue;
    }
    if (m != "delta_nll" && m != "next_token_agreement" && m != "reference_nll" &&
        m != "subject_nll")
      throw Error(t.Where(i, metric) + ": unknown metric " + Quoted(Clipped(m)));
    std::vector<std::string>& doms = domain_names[a];
    const std::string& d = t.Text(i, domain);
    size_t at = static_cast<size_t>(std::find(doms.begin(), doms.end(), d) - doms.begin());
    if (at == doms.size()) {
      doms.push_back(d);
      AblationDomainResult x;
      x.kl = {kNan, kNan, kNan};
      r.nll.push_back(x);
    }
    AblationDomainResult& x = r.nll[at];
    x.tokens = tokens;
    if (m == "delta_nll") x.delta_nll = e;
    if (m == "next_token_agreement") x.agreement = e;
    if (m == "reference_nll") x.base_nll = e.value;
    if (m == "subject_nll") x.policy_nll = e.value;
  }
  // Domains in the order named with "all" moved last (row M), as the writer orders them.
  for (size_t a = 0; a < audits.size(); ++a) {
    RouteAudit& r = audits[a];
    std::vector<AblationDomainResult> nll;
    for (size_t m = 0; m < domain_names[a].size(); ++m)
      if (domain_names[a][m] != "all") {
        r.domains.push_back(domain_names[a][m]);
        nll.push_back(r.nll[m]);
      }
    for (size_t m = 0; m < domain_names[a].size(); ++m)
      if (domain_names[a][m] == "all") nll.push_back(r.nll[m]);
    r.nll = std::move(nll);
    if (!r.nll.empty() && r.nll.size() == r.domains.size() + 1) r.tokens = r.nll.back().tokens;
  }
  return audits;
}

}  // namespace moe
