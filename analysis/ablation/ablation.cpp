#include "analysis/ablation/ablation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "analysis/ablation/ablation_file.h"
#include "analysis/common/progress_bar.h"
#include "analysis/common/writer_lock.h"
#include "analysis/corpus/corpus.h"
#include "analysis/corpus/trace_corpus.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

std::string Fixed(double v, int digits = 4) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// The corpus of the run: the trace's documents or the corpus files, read as `moescope trace`
// reads them.
Corpus ReadAblationCorpus(const LoadedModel& m, const AblationOptions& o, TraceRunSettings& run) {
  if (!o.trace.empty() && !run.corpus_files.empty())
    Fail("ablate", "give corpus files or a trace, not both");
  if (o.trace.empty() && run.corpus_files.empty())
    Fail("ablate", "nothing to run over: give corpus files (--corpus) or a trace (--trace)");
  if (!o.trace.empty()) run.corpus_files = {o.trace.string()};
  const int vocab = m.config().vocab_size;
  Corpus corpus = o.trace.empty()
                      ? ReadCorpus(std::vector<std::filesystem::path>(run.corpus_files.begin(),
                                                                      run.corpus_files.end()),
                                   m.tokenizer.get(), vocab, CorpusOptionsOf(run))
                      : CorpusFromTrace(o.trace, vocab, CorpusOptionsOf(run));
  if (corpus.documents.empty()) Fail("corpus", "has no documents");
  return corpus;
}

// The sweep proper, under RunAblation's writer lock: skips the policies a resumed file has,
// runs the rest, commits each as it finishes, and writes the CSV of everything in the file.
AblationSummary SweepInto(const std::vector<AblationPolicy>& policies, const AblationOptions& o,
                          const TraceRunSettings& run, const AblationHeader& h, bool resuming,
                          const AblationPassRunner& runner, AblationSummary summary,
                          std::chrono::steady_clock::time_point start) {
  const int64_t T = h.tokens.count();
  std::vector<std::string> done;
  if (resuming) {
    AblationFile::CheckResumable(o.output, h);
    done = AblationFile::CompletedPolicies(o.output);
  }
  // A new results file is made once the pass has accepted the policies and options (it checks
  // them first), so a rejected request replaces nothing.
  bool file_ready = resuming;
  auto make_file = [&] {
    if (!file_ready) AblationFile::Create(o.output, h);
    file_ready = true;
  };
  std::vector<AblationPolicy> pending;
  for (const AblationPolicy& p : policies)
    if (std::find(done.begin(), done.end(), p.name) == done.end()) pending.push_back(p);
  summary.skipped = summary.policies - static_cast<int>(pending.size());

  AblationPassOptions pass = o.pass;
  pass.windows = run.windows;
  ProgressBar progress(o.progress, static_cast<int64_t>(pending.size()),
                       static_cast<int64_t>(pending.size()) * T);
  progress.SetItemsName("policies");
  int finished = 0;
  pass.on_progress = [&](int64_t evaluated, int64_t total) {
    progress.Update(finished, evaluated);
    if (o.pass.on_progress) o.pass.on_progress(evaluated, total);
  };
  // Each finished policy is committed at once, so an interrupted sweep keeps it.
  pass.on_result = [&](const AblationResult& r, const std::vector<float>& base_nll) {
    make_file();
    AblationFile::WritePolicy(o.output, r, base_nll);
    ++finished;
  };
  AblationPassResult result;
  if (!pending.empty() || policies.empty()) result = runner(pending, pass);
  progress.Clear();
  make_file();
  summary.run = static_cast<int>(result.results.size());
  summary.interrupted = result.interrupted;
  summary.diffs = std::move(result.diffs);

  // Every finished policy in the file, in sweep order (others after them).
  std::vector<AblationResult> results = AblationFile::Read(o.output, &summary.domains);
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < policies.size(); ++i) rank[policies[i].name] = i;
  std::stable_sort(results.begin(), results.end(), [&](const auto& a, const auto& b) {
    const size_t ra = rank.count(a.name) ? rank[a.name] : policies.size();
    const size_t rb = rank.count(b.name) ? rank[b.name] : policies.size();
    return ra < rb;
  });
  WriteAblationCsv(summary.csv, summary.domains, results);
  summary.results = std::move(results);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace

PreparedAblation PrepareAblation(const LoadedModel& m, const AblationOptions& o) {
  if (o.output.extension() == ".csv")
    Fail(o.output.string(), "the results file must not end in .csv");
  PreparedAblation p;
  p.run = o.run;
  p.run.windows = p.run.windows.Resolved(m.config().context_length());
  p.run.record_logits = false;
  p.corpus = ReadAblationCorpus(m, o, p.run);
  AblationHeader& h = p.header;
  h.run = MakeTraceHeader(m, RoutingPolicy{}, p.corpus, p.run);
  h.bootstrap = o.pass.bootstrap;
  h.seed = o.pass.seed;
  h.ci_level = o.pass.ci_level;
  h.tokens = ScoredTokens::Of(p.corpus);
  if (h.tokens.count() == 0) Fail("corpus", "has no token with a next token to predict");
  return p;
}

AblationSummary RunAblation(const LoadedModel& m, const std::vector<AblationPolicy>& policies,
                            const AblationOptions& o) {
  const PreparedAblation p = PrepareAblation(m, o);
  return RunPreparedAblation(
      policies, o, p,
      [&](const std::vector<AblationPolicy>& pending, const AblationPassOptions& pass) {
        return RunAblationPass(*m.model, p.corpus, p.header.tokens, pending, pass);
      });
}

AblationSummary RunPreparedAblation(const std::vector<AblationPolicy>& policies,
                                    const AblationOptions& o, const PreparedAblation& p,
                                    const AblationPassRunner& runner) {
  const auto start = std::chrono::steady_clock::now();
  AblationSummary summary;
  summary.output = o.output.string();
  summary.csv = std::filesystem::path(o.output).replace_extension(".csv").string();
  summary.policies = static_cast<int>(policies.size());
  summary.documents = static_cast<int64_t>(p.corpus.documents.size());
  summary.tokens = p.header.tokens.count();
  // One writer per results file for the whole sweep (policies are committed one open at a time,
  // so HDF5's own lock would not keep a second sweep out between them). An empty file is what a
  // sweep stopped before its first commit leaves: there is nothing in it to resume.
  CheckReplaceable(o.output);
  WriterLock lock = WriterLock::Acquire(o.output);
  std::error_code size_error;
  const bool resuming = o.resume && std::filesystem::file_size(o.output, size_error) > 0;
  try {
    return SweepInto(policies, o, p.run, p.header, resuming, runner, std::move(summary), start);
  } catch (...) {
    if (lock.created_file() && std::filesystem::file_size(o.output, size_error) == 0)
      std::filesystem::remove(o.output, size_error);
    throw;
  }
}

void WriteAblationCsv(const std::filesystem::path& csv, const std::vector<std::string>& domains,
                      const std::vector<AblationResult>& results) {
  CheckReplaceable(csv);
  std::ostringstream out;  // written atomically below
  auto number = [](double v) {
    if (std::isnan(v)) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.10g", v);
    return std::string(buf);
  };
  auto text = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  out << "policy,kind,layer,expert,r,k,control_of,first_layer,domain,metric,value,ci_low,ci_high,"
         "n\n";
  for (const AblationResult& r : results)
    for (size_t m = 0; m < r.domains.size(); ++m) {
      const AblationDomainResult& d = r.domains[m];
      const std::string prefix = text(r.name) + "," + r.kind + "," + std::to_string(r.layer) + "," +
                                 std::to_string(r.expert) + "," + std::to_string(r.r) + "," +
                                 std::to_string(r.k) + "," + text(r.control_of) + "," +
                                 std::to_string(r.first_layer) + "," +
                                 text(m < domains.size() ? domains[m] : "all") + ",";
      const std::string n = std::to_string(d.tokens);
      auto row = [&](const char* metric, const Estimate& e) {
        out << prefix << metric << ',' << number(e.value) << ',' << number(e.ci_low) << ','
            << number(e.ci_high) << ',' << n << '\n';
      };
      row("delta_nll", d.delta_nll);
      row("kl", d.kl);
      row("top1_agreement", d.agreement);
      row("base_nll", {d.base_nll, kNan, kNan});
      row("policy_nll", {d.policy_nll, kNan, kNan});
      // The compute side of the curve: experts run per token and MoE layer (all domains).
      if (m + 1 == r.domains.size() && !r.experts_per_layer.empty())
        row("mean_experts", {r.MeanExperts(), kNan, kNan});
    }
  WriteFileAtomically(csv, out.str());
}

namespace {

// Top-r beside its random-r controls, ΔNLL per domain (empty without random-r results).
std::string FormatTopRControls(const AblationSummary& s) {
  std::vector<const AblationResult*> rows;
  for (const AblationResult& top : s.results) {
    if (top.kind != "top_r" || top.domains.empty()) continue;
    std::vector<const AblationResult*> controls;
    for (const AblationResult& c : s.results)
      if (c.kind == "random_r" && c.control_of == top.name && !c.domains.empty())
        controls.push_back(&c);
    if (controls.empty()) continue;
    rows.push_back(&top);
    rows.insert(rows.end(), controls.begin(), controls.end());
  }
  if (rows.empty()) return "";
  std::vector<std::string> columns = s.domains;
  columns.push_back("all");
  size_t name_width = 6;
  for (const AblationResult* r : rows) name_width = std::max(name_width, r->name.size());
  auto pad = [](std::string t, size_t w) {
    t.resize(std::max(t.size(), w), ' ');
    return t;
  };
  std::string out =
      "\ntop-r and its random-r control: ΔNLL per domain\n" + pad("policy", name_width);
  for (const std::string& d : columns) out += "  " + pad(d, 8);
  out += "\n";
  for (const AblationResult* r : rows) {
    out += pad(r->name, name_width);
    for (size_t m = 0; m < columns.size(); ++m)
      out += "  " +
             pad(m < r->domains.size() ? Fixed(r->domains[m].delta_nll.value) : std::string("-"),
                 std::max<size_t>(8, columns[m].size()));
    out += "\n";
  }
  return out;
}

// The dynamic-k policies as a quality/compute curve: experts run per token (mean over MoE layers)
// against ΔNLL per domain with its interval, baseline first.
std::string FormatQualityCompute(const AblationSummary& s) {
  std::vector<const AblationResult*> rows;
  for (const AblationResult& r : s.results)
    if ((r.kind == "dynamic_k" || r.kind == "none") && !r.domains.empty()) rows.push_back(&r);
  if (rows.size() < 2) return "";
  std::string out = "\nquality/compute (dynamic k): experts per token and layer, ΔNLL [CI]\n";
  for (const AblationResult* r : rows) {
    out += r->name + "  experts " +
           (r->experts_per_layer.empty() ? std::string("-") : Fixed(r->MeanExperts(), 3));
    for (size_t m = 0; m < r->domains.size(); ++m) {
      const Estimate& e = r->domains[m].delta_nll;
      out +=
          "  " + (m < s.domains.size() ? s.domains[m] : std::string("all")) + " " + Fixed(e.value);
      if (!std::isnan(e.ci_low)) out += " [" + Fixed(e.ci_low) + ", " + Fixed(e.ci_high) + "]";
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string FormatAblationTable(const AblationSummary& s) {
  size_t width = 6;
  for (const AblationResult& r : s.results) width = std::max(width, r.name.size());
  auto pad = [&](std::string t, size_t w) {
    t.resize(std::max(t.size(), w), ' ');
    return t;
  };
  std::string out = pad("policy", width) + "  from  " + pad("ΔNLL (all) [95% CI]", 30) +
                    pad("KL", 10) + pad("top-1 agree", 13) + "experts/token\n";
  for (const AblationResult& r : s.results) {
    if (r.domains.empty()) continue;
    const AblationDomainResult& a = r.domains.back();
    std::string ci, from = "L";
    if (!std::isnan(a.delta_nll.ci_low)) {
      ci += " [";
      ci += Fixed(a.delta_nll.ci_low);
      ci += ", ";
      ci += Fixed(a.delta_nll.ci_high);
      ci += "]";
    }
    from += std::to_string(r.first_layer);
    out += pad(r.name, width);
    out += "  ";
    out += pad(from, 4);
    out += "  ";
    out += pad(Fixed(a.delta_nll.value) + ci, 28);
    out += "  ";
    out += pad(Fixed(a.kl.value), 10);
    out += pad(Fixed(a.agreement.value, 3), 13);
    out += r.experts_per_layer.empty() ? std::string("-") : Fixed(r.MeanExperts(), 3);
    out += "\n";
  }
  out += FormatTopRControls(s);
  out += FormatQualityCompute(s);
  return out;
}

std::string FormatAblationSummary(const AblationSummary& s) {
  char text[256];
  std::snprintf(text, sizeof(text),
                "%s %d of %d policies (%d already done) over %lld documents, %s predictions "
                "each, in %.1fs -> %s, %s",
                s.interrupted ? "interrupted after" : "ran", s.run, s.policies, s.skipped,
                static_cast<long long>(s.documents),
                ShortCount(static_cast<double>(s.tokens)).c_str(), s.seconds, s.output.c_str(),
                s.csv.c_str());
  std::string out = text;
  if (s.interrupted) out += "\nresume with the same command and --resume";
  return out;
}

}  // namespace moe
