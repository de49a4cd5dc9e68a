// The bundled default model (datasets/models/default): a trained LLaMA-MoE whose per-domain
// perplexity in the engine equals the PyTorch reference's (tests/reference/score_reference.py,
// the evaluation protocol of datasets/training_common.py) within 0.1%.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "analysis/corpus_scoring.h"
#include "trace_test_util.h"

using namespace moe;

namespace {

// The first `per_file` documents of every bundled sample file, as one JSONL corpus.
std::filesystem::path SampleSubset(const std::filesystem::path& dir, int per_file) {
  const std::filesystem::path out = dir / "subset.jsonl";
  std::ofstream o(out);
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(trace_test::SourceDir() / "datasets/sample"))
    if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    for (int i = 0; i < per_file && std::getline(in, line); ++i) o << line << "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("the bundled model's per-domain perplexity equals the PyTorch reference's",
          "[bundled][reference]") {
  const std::filesystem::path model_dir = trace_test::SourceDir() / "datasets/models/default";
  const LoadedModel m = LoadModel(model_dir);
  const LlamaMoeConfig& c = m.config();
  REQUIRE(c.is_moe);
  const std::filesystem::path dir = TempDir("bundled_model");
  const std::filesystem::path corpus_file = SampleSubset(dir, 2);
  const Corpus corpus = ReadCorpus({corpus_file}, m.tokenizer.get(), c.vocab_size, {});
  REQUIRE(corpus.domains.size() >= 6);
  const CorpusScore score =
      ScoreCorpus(*m.model, corpus, {c.context_length(), c.context_length()}, 4);
  std::map<std::string, DocumentScore> engine;
  for (size_t d = 0; d < corpus.documents.size(); ++d) {
    DocumentScore& s = engine[corpus.domains[static_cast<size_t>(corpus.documents[d].domain)]];
    s.total_nll += score.documents[d].total_nll;
    s.predicted += score.documents[d].predicted;
  }

  const std::filesystem::path json = dir / "reference.json";
  const trace_test::CommandResult r = trace_test::RunCommand(
      "OMP_NUM_THREADS=1 /usr/bin/python3 " +
      trace_test::Quote((trace_test::SourceDir() / "tests/reference/score_reference.py").string()) +
      " " + trace_test::Quote(model_dir.string()) + " " + trace_test::Quote(corpus_file.string()) +
      " --json " + trace_test::Quote(json.string()));
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::ifstream in(json);
  const nlohmann::json reference = nlohmann::json::parse(in);
  REQUIRE(reference.size() == engine.size());
  for (const auto& [domain, s] : engine) {
    INFO("domain " << domain);
    const nlohmann::json& want = reference.at(domain);
    CHECK(s.predicted == want.at("tokens").get<int64_t>());
    const double ppl = std::exp(s.mean_nll());
    const double want_ppl =
        std::exp(want.at("nll_sum").get<double>() / want.at("tokens").get<double>());
    CHECK(std::fabs(ppl / want_ppl - 1.0) < 1e-3);
    // Trained: far from the uniform perplexity of the 8192-token vocabulary.
    CHECK(ppl < 0.05 * c.vocab_size);
  }
}
