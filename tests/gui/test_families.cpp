// trace → stats → ablate → app export on a model of every family (tests/fixtures/families_e2e):
// the same library calls the CLI makes, then moescope-studio --export-views on an Xvfb display.
// Numerics are checked elsewhere (tests/unit/test_families.cpp against the PyTorch reference);
// this checks that every part runs on each family and keeps dense layers and shared experts
// apart.
#include <QImage>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "analysis/ablation/ablation.h"
#include "analysis/run/trace_runner.h"
#include "analysis/stats/stats_job.h"
#include "analysis/trace/trace_reader.h"
#include "core/model_loader.h"
#include "gui_test_util.h"

namespace {

std::filesystem::path FamilyModel(const std::string& family) {
  return gui_test::SourceDir() / "tests/fixtures/families_e2e" / family;
}

// The layers named in stats.csv's first column (-1 for model-wide rows).
std::set<int> CsvLayers(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::set<int> layers;
  while (std::getline(in, line)) layers.insert(std::stoi(line.substr(0, line.find(','))));
  return layers;
}

}  // namespace

TEST_CASE("trace, stats, ablate and the app's export run on every family",
          "[gui][families][xvfb]") {
  // Folder and family; qwen3_moe_128 routes over 128 experts, past what one ImGui table holds
  // (64 columns) and past a 64-bit expert set.
  const std::pair<const char*, const char*> models[] = {
      {"mixtral", "mixtral"},     {"olmoe", "olmoe"},           {"qwen2_moe", "qwen2_moe"},
      {"qwen3_moe", "qwen3_moe"}, {"granitemoe", "granitemoe"}, {"dots1", "dots1"},
      {"qwen3_moe_128", "qwen3_moe"}};
  for (const auto& [folder, family] : models) {
    SECTION(folder) {
      gui_test::TempDir dir(std::string("family_") + folder);
      const moe::LoadedModel model = moe::LoadModel(FamilyModel(folder));
      const moe::ModelConfig& c = model.config();

      // Trace: the family and its dense layers are recorded; dense layers route nothing.
      moe::TraceOptions trace;
      trace.output = dir.path() / "trace.h5";
      trace.run.corpus_files = {gui_test::TinyCorpus().string()};
      trace.batch_size = 4;
      moe::RunTrace(model, moe::RoutingPolicy{}, trace);
      const moe::TraceReader reader(trace.output);
      CHECK(reader.info().model_family == family);
      CHECK(reader.info().moe_layers == c.moe_layer);
      CHECK_FALSE(reader.info().router_recipe.empty());
      const moe::RoutingRows rows = reader.ReadRouting(0, reader.num_tokens());
      std::set<int> experts_used;
      for (int64_t t = 0; t < rows.count; ++t)
        for (int l = 0; l < c.num_hidden_layers; ++l)
          for (int16_t e : rows.Ids(t, l)) {
            if (!c.IsMoeLayer(l)) CHECK(e == -1);
            if (c.IsMoeLayer(l) && e >= 0) experts_used.insert(l * c.num_experts + e);
          }
      CHECK(experts_used.size() > static_cast<size_t>(c.num_experts));  // routing varies

      // Stats: rows only for layers that route.
      moe::StatsRunOptions stats;
      stats.traces = {trace.output};
      stats.output = dir.path() / "stats";
      stats.stats.bootstrap = 50;
      stats.stats.permutations = 0;
      moe::RunStats(stats);
      for (int layer : CsvLayers(stats.output / "stats.csv"))
        if (layer >= 0) CHECK(c.IsMoeLayer(layer));

      // Ablate: top-k 1 everywhere, plus the shared expert off where there is one.
      moe::SweepRequest sweep;
      sweep.k_sweep = "global";
      sweep.k_values = {1};
      sweep.shared_expert = c.shared_expert_width > 0;
      moe::AblationOptions ablate;
      ablate.trace = trace.output;
      ablate.output = dir.path() / "ablation.h5";
      ablate.pass.bootstrap = 50;
      const moe::AblationSummary summary =
          moe::RunAblation(model, moe::BuildSweep(sweep, c), ablate);
      CHECK(summary.results.size() == moe::BuildSweep(sweep, c).size());
      CHECK(std::filesystem::file_size(summary.csv) > 100);

      // The app exports every view of this trace.
      const auto out = dir.path() / "views";
      const gui_test::ShellRun r = gui_test::Shell(
          "QT_QPA_PLATFORM=xcb DISPLAY=" + gui_test::TestDisplay() + " " +
          gui_test::Quote(gui_test::Studio()) + " --export-views " + gui_test::Quote(out.string()) +
          " " + gui_test::Quote(trace.output.string()) + " --model " +
          gui_test::Quote(FamilyModel(folder).string()) + " --size 900x600");
      INFO(r.output);
      REQUIRE(r.status == 0);
      // The overview names the family and counts every domain's documents (from the first layer
      // that routes: a dense first layer has no rows).
      std::ifstream overview(out / "overview.csv");
      const std::string text((std::istreambuf_iterator<char>(overview)),
                             std::istreambuf_iterator<char>());
      CHECK(text.find(std::string("trace,model family,") + family) != std::string::npos);
      CHECK(text.find(",\"0 documents") == std::string::npos);
      for (const char* view : {"overview", "expert_load", "specialization", "token_map"}) {
        QImage image(QString::fromStdString((out / (std::string(view) + ".png")).string()));
        INFO(view);
        REQUIRE(!image.isNull());
        std::set<QRgb> colours;
        for (int y = 0; y < image.height(); y += 3)
          for (int x = 0; x < image.width(); x += 3) colours.insert(image.pixel(x, y));
        CHECK(colours.size() > 20);
      }
    }
  }
}
