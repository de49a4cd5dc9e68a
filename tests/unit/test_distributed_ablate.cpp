// Distributed ablation (docs/distributed.md): one document's part of a group of policies
// (RunAblationDocument), assembled over every document in any order, equals the single-process
// pass bit for bit; in builds with MOESCOPE_MPI, `mpirun -np N moescope ablate` writes the
// results file of one process (per-token values and base NLL bit-identical, estimates equal),
// resumes a file cut to a committed prefix, and refuses ranks started with other policies.
#include <hdf5.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "analysis/ablation/ablation.h"
#include "analysis/ablation/ablation_file.h"
#include "analysis/common/hdf5_util.h"
#include "analysis/corpus/corpus.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;
using trace_test::Quote;
using trace_test::RunCommand;

namespace {

template <typename T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

bool SameEstimate(const Estimate& a, const Estimate& b) {
  auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  return same(a.value, b.value) && same(a.ci_low, b.ci_low) && same(a.ci_high, b.ci_high);
}

// Every policy's estimates equal and per-token values bit for bit, in the same order.
void CheckSameResults(const std::vector<AblationResult>& want,
                      const std::vector<AblationResult>& got) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const AblationResult &a = want[i], &b = got[i];
    INFO("policy " << a.name);
    CHECK(b.name == a.name);
    CHECK(b.first_layer == a.first_layer);
    CHECK(SameBits(b.delta_nll, a.delta_nll));
    CHECK(SameBits(b.kl, a.kl));
    CHECK(SameBits(b.agree, a.agree));
    CHECK(SameBits(b.experts_per_layer, a.experts_per_layer));
    REQUIRE(b.domains.size() == a.domains.size());
    for (size_t m = 0; m < a.domains.size(); ++m) {
      CHECK(b.domains[m].tokens == a.domains[m].tokens);
      CHECK(b.domains[m].base_nll == a.domains[m].base_nll);
      CHECK(b.domains[m].policy_nll == a.domains[m].policy_nll);
      CHECK(SameEstimate(b.domains[m].delta_nll, a.domains[m].delta_nll));
      CHECK(SameEstimate(b.domains[m].kl, a.domains[m].kl));
      CHECK(SameEstimate(b.domains[m].agreement, a.domains[m].agreement));
    }
  }
}

}  // namespace

TEST_CASE("document parts assembled in any order equal the whole-corpus ablation pass",
          "[ablate][distributed]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  CorpusOptions co;
  const Corpus corpus = ReadCorpus({trace_test::TinyCorpus()}, m.tokenizer.get(), c.vocab_size, co);
  const ScoredTokens tokens = ScoredTokens::Of(corpus);
  // Policies from different first layers, a random-r draw (hashes the document index) and a k.
  SweepRequest sweep;
  sweep.single_experts = true;
  sweep.layers = {1};
  sweep.top_r_max = 1;
  sweep.top_r_controls = 1;
  std::vector<AblationPolicy> policies = BuildSweep(sweep, c);
  REQUIRE(policies.size() >= 4);
  AblationPassOptions o;
  o.windows = WindowRule{}.Resolved(c.context_length());
  o.batch_size = 1;
  o.bootstrap = 25;
  o.group_size = static_cast<int>(policies.size());
  const AblationPassResult whole = RunAblationPass(*m.model, corpus, tokens, policies, o);

  const AblationWindows windows = AblationWindows::Plan(corpus, o.windows);
  // The long document is cut into several windows: its part runs them in the pass's order.
  const auto most =
      std::max_element(windows.of_document.begin(), windows.of_document.end(),
                       [](const auto& a, const auto& b) { return a.size() < b.size(); });
  CHECK(most->size() > 1);
  std::vector<int64_t> order(corpus.documents.size());
  for (size_t d = 0; d < order.size(); ++d) order[d] = static_cast<int64_t>(d);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  AblationGroupAssembly assembly(*m.model, tokens, policies, o);
  for (int64_t d : order) {
    const AblationDocumentPart part =
        RunAblationDocument(*m.model, corpus, tokens, windows, policies, d, o);
    CHECK(part.complete);
    assembly.Add(part);
  }
  std::vector<float> base_nll;
  CheckSameResults(whole.results, assembly.Finish(base_nll));
  CHECK(SameBits(base_nll, whole.base_nll));
  // A document twice is refused.
  CHECK_THROWS_WITH(
      assembly.Add(RunAblationDocument(*m.model, corpus, tokens, windows, policies, 0, o)),
      Catch::Contains("arrived twice"));
}

#ifdef MOESCOPE_TEST_MPIRUN
namespace {

std::string Cli(const std::string& args) {
  return Quote(trace_test::Cli()) + " " + args;
}

std::string Mpirun(int ranks, const std::string& args) {
  return std::string(MOESCOPE_TEST_MPIRUN) + " --allow-run-as-root --oversubscribe -np " +
         std::to_string(ranks) + " " + Cli(args);
}

// Two groups of policies, several first layers, random-r draws; one window per forward pass.
std::string AblateArgs(const std::filesystem::path& out, const std::string& layers = "1") {
  return "ablate --model " + Quote(trace_test::TinyModel().string()) + " --corpus " +
         Quote(trace_test::TinyCorpus().string()) + " --single-experts --layers " + layers +
         " --top-r-max 1 --top-r-controls 1 --batch-size 1 --group-size 4 --bootstrap 25 "
         "--threads 1 -o " +
         Quote(out.string());
}

std::vector<float> BaseNll(const std::filesystem::path& file) {
  h5::SilenceErrors();
  h5::Handle f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  h5::Handle ds = h5::OpenDataset(f.id(), "/tokens/base_nll", {file.string(), "base_nll"});
  const hsize_t n = h5::Dims(ds.id(), {file.string(), "base_nll"})[0];
  std::vector<float> v(n);
  h5::ReadRows(ds.id(), H5T_NATIVE_FLOAT, 0, n, v.data(), {file.string(), "base_nll"});
  return v;
}

void CheckSameFile(const std::filesystem::path& want, const std::filesystem::path& got) {
  INFO("comparing " << got.string() << " with " << want.string());
  std::vector<std::string> dw, dg;
  CheckSameResults(AblationFile::Read(want, &dw), AblationFile::Read(got, &dg));
  CHECK(dg == dw);
  CHECK(SameBits(BaseNll(got), BaseNll(want)));
  std::filesystem::path cw = want, cg = got;
  CHECK(trace_test::ReadText(cg.replace_extension(".csv")) ==
        trace_test::ReadText(cw.replace_extension(".csv")));
}

}  // namespace

TEST_CASE("mpirun -np N moescope ablate writes the single-process results file",
          "[distributed][mpi][ablate]") {
  const auto dir = TempDir("dist_mpi_ablate");
  const auto whole = dir / "whole.h5";
  const auto one = RunCommand(Cli(AblateArgs(whole)));
  INFO(one.output);
  REQUIRE(one.status == 0);
  for (int ranks : {1, 2, 3}) {
    DYNAMIC_SECTION(ranks << " ranks") {
      const auto out = dir / ("mpi" + std::to_string(ranks) + ".h5");
      const auto r = RunCommand(Mpirun(ranks, AblateArgs(out)));
      INFO(r.output);
      REQUIRE(r.status == 0);
      CHECK_THAT(r.output, Catch::Contains("on " + std::to_string(ranks) + " rank") &&
                               Catch::Contains("communication: rank 0 sent"));
      CheckSameFile(whole, out);
    }
  }
}

TEST_CASE("mpirun ablate --resume finishes a file cut to a committed prefix identically",
          "[distributed][mpi][ablate][resume]") {
  const auto dir = TempDir("dist_mpi_ablate_resume");
  const auto whole = dir / "whole.h5", out = dir / "out.h5";
  REQUIRE(RunCommand(Cli(AblateArgs(whole))).status == 0);
  REQUIRE(RunCommand(Mpirun(2, AblateArgs(out))).status == 0);
  // As an interruption in the second group leaves it: the first group committed, the rest not.
  const std::vector<std::string> names = AblationFile::CompletedPolicies(out);
  REQUIRE(names.size() > 4);
  {
    h5::SilenceErrors();
    h5::Handle f(H5Fopen(out.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    for (size_t i = 4; i < names.size(); ++i) {
      char group[32];
      std::snprintf(group, sizeof(group), "/policies/%06zu", i);
      h5::Handle g(H5Gopen2(f.id(), group, H5P_DEFAULT));
      REQUIRE(g.valid());
      h5::WriteFlag(g.id(), "completed", false, {out.string(), group});
    }
  }
  REQUIRE(AblationFile::CompletedPolicies(out).size() == 4);
  const auto r = RunCommand(Mpirun(3, AblateArgs(out) + " --resume"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("(4 already done)"));
  CheckSameFile(whole, out);
}

TEST_CASE("mpirun ablate refuses ranks started with other policies", "[distributed][mpi][ablate]") {
  const auto dir = TempDir("dist_mpi_ablate_bad");
  const auto out = dir / "out.h5";
  const std::string mpirun =
      std::string(MOESCOPE_TEST_MPIRUN) + " --allow-run-as-root --oversubscribe";
  const auto r = RunCommand(mpirun + " -np 1 " + Cli(AblateArgs(out)) + " : -np 1 " +
                            Cli(AblateArgs(out, "0")));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("rank 1 was started with different arguments"));
  CHECK_FALSE(std::filesystem::exists(out));
}

#endif
