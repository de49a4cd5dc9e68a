// The dynamic-k sweep of `moescope ablate`: experts run per token are recorded with every policy;
// t = 0 changes nothing; t = 1, a tiny top-p and beta = 1 keep only the first expert, which is
// exactly top-k = 1 (the softmax of one logit is 1), token for token.
#include <catch2/catch.hpp>
#include <cmath>

#include "analysis/ablation/ablation.h"
#include "analysis/ablation/ablation_file.h"
#include "core/error.h"
#include "trace_test_util.h"

using namespace moe;
using Catch::Matchers::Contains;

namespace {

const AblationResult& Named(const AblationSummary& s, const std::string& name) {
  for (const AblationResult& r : s.results)
    if (r.name == name) return r;
  FAIL("no result named " << name);
  return s.results.front();
}

}  // namespace

TEST_CASE("dynamic-k sweep: experts per token beside ΔNLL; the extremes are top-k and top-1",
          "[ablate][dynamic-k]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  const ModelConfig& c = m.config();
  const auto dir = TempDir("ablate-dynamic-k");
  SweepRequest request;
  request.dynamic_k = {"threshold=0,1", "top-p=0.0001", "skip=1"};
  request.k_sweep = "global";
  request.k_values = {1};
  const std::vector<AblationPolicy> policies = BuildSweep(request, c);
  REQUIRE(policies.size() == 6);
  AblationOptions o;
  o.run.corpus_files = {trace_test::TinyCorpus().string()};
  o.run.max_tokens_per_document = 200;
  o.output = dir / "dk.h5";
  o.pass.batch_size = 4;
  o.pass.bootstrap = 20;
  const AblationSummary s = RunAblation(m, policies, o);

  const AblationResult& none = Named(s, "none");
  const AblationResult& t0 = Named(s, "threshold0");
  const AblationResult& k1 = Named(s, "k1");
  REQUIRE(none.experts_per_layer.size() == static_cast<size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    CHECK(none.experts_per_layer[static_cast<size_t>(l)] == c.num_selects);
    CHECK(t0.experts_per_layer[static_cast<size_t>(l)] == c.num_selects);
    CHECK(k1.experts_per_layer[static_cast<size_t>(l)] == 1.0);
  }
  CHECK(t0.domains.back().delta_nll.value == 0.0);
  CHECK(t0.domains.back().policy_nll == t0.domains.back().base_nll);
  for (const char* name : {"threshold1", "top-p0.0001", "skip1"}) {
    const AblationResult& r = Named(s, name);
    INFO(name);
    CHECK(r.kind == "dynamic_k");
    CHECK(r.MeanExperts() == 1.0);
    CHECK(r.delta_nll == k1.delta_nll);            // every token's ΔNLL, bit for bit
    CHECK(r.domains.back().delta_nll.value != 0);  // it changed something
  }
  // The file and the CSV carry the compute side.
  const std::vector<AblationResult> read = AblationFile::Read(o.output);
  REQUIRE(read.size() == policies.size());
  for (size_t i = 0; i < read.size(); ++i)
    CHECK(read[i].experts_per_layer == s.results[i].experts_per_layer);
  const std::string csv = trace_test::ReadText(dir / "dk.csv");
  CHECK_THAT(csv, Contains("threshold1,dynamic_k,-1,-1,-1,-1,,0,all,mean_experts,1,"));
  CHECK_THAT(FormatAblationTable(s), Contains("quality/compute"));
}

TEST_CASE("dynamic-k sweep specs out of form or range name the flag",
          "[ablate][dynamic-k][bad-input]") {
  const LoadedModel m = LoadModel(trace_test::TinyModel());
  auto bad = [&](const std::string& spec, const std::string& message) {
    SweepRequest request;
    request.dynamic_k = {spec};
    INFO(spec);
    CHECK_THROWS_WITH(BuildSweep(request, m.config()),
                      Contains("--dynamic-k") && Contains(message));
  };
  bad("thresh=0.1", "must look like");
  bad("threshold=1.5", "not a number in [0, 1]");
  bad("top-p=abc", "not a number in [0, 1]");
  bad("skip=", "names no value");
}
