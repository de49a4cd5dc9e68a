// The ablation panel: its background job (analysis RunAblation over the small test trace's
// documents) and the panel drawing the job's results headless.
#include <algorithm>
#include <sstream>

#include "gui/model/ablation_job.h"
#include "gui/model/studio_loader.h"
#include "gui/views/ablation_view.h"
#include "gui_test_util.h"

using namespace moe::studio;

namespace {

StudioData SmallTraceData() {
  LoadOptions o;
  o.stats.bootstrap = 0;
  o.stats.permutations = 0;
  return LoadStudioData(gui_test::SmallTrace(), o).data;
}

}  // namespace

TEST_CASE("ablation panel: the job gives ΔNLL 0 for the baseline, one row per domain",
          "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  const int M = d.num_domains();
  AblationJob job;
  AblationView view;
  view.set_job({[&](const AblationRequest& r) { job.Start(r); }, [&] { job.Cancel(); },
                [&] { return job.Status(); }});
  Selection sel;
  sel.layer = 1;
  sel.experts = {0, 2};
  // No model is open: the trace's own model runs.
  const AblationRequest request = view.MakeRequest(d, sel);
  CHECK(request.trace == d.trace.path);
  CHECK(request.model_dir == d.trace.model_path);
  CHECK(request.experts == std::vector<int>{0, 2});
  CHECK(request.mode == "reroute");

  job.Start(request);
  job.Wait();
  const AblationStatus status = job.Status();
  INFO(status.error);
  REQUIRE(status.error.empty());
  CHECK(!status.running);
  CHECK(status.progress == 1.0);
  REQUIRE(status.outcome != nullptr);
  const AblationOutcome& o = *status.outcome;
  CHECK(o.domains == d.domains);
  REQUIRE(o.policies.size() == 2);
  const AblationPolicyResult& base = o.policies[0];
  CHECK(base.name == "none");
  REQUIRE(base.delta_nll.size() == static_cast<size_t>(M + 1));
  for (int m = 0; m <= M; ++m) {
    CHECK(base.delta_nll[m] == 0.0);
    CHECK(base.kl[m] == 0.0);
    CHECK(base.agreement[m] == 1.0);
    CHECK(base.tokens[m] > 0);
  }
  const AblationPolicyResult& ablated = o.policies[1];
  CHECK(ablated.name == "L1E0+2-reroute");
  bool changed = false;
  for (int m = 0; m <= M; ++m) {
    changed |= ablated.delta_nll[m] != 0.0;
    CHECK(ablated.delta_nll[m] == Approx(ablated.policy_nll[m] - ablated.base_nll[m]).margin(1e-9));
    CHECK(ablated.delta_low[m] <= ablated.delta_nll[m] + 1e-12);
    CHECK(ablated.delta_high[m] >= ablated.delta_nll[m] - 1e-12);
  }
  CHECK(changed);  // re-routing two of the bundled model's experts changes its predictions

  gui_test::Headless ui(ImVec2(1280, 800));
  ui.Frame(view, d, sel);
  ui.Frame(view, d, sel);
  CHECK(view.drawn_rows() == M + 1);
  std::ostringstream csv;
  view.WriteCsv(d, sel, csv);
  const std::string text = csv.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + 2 * (M + 1));
  CHECK(text.find("none,none,all,") != std::string::npos);

  SECTION("a domain selected runs only its documents") {
    sel.domain = 0;
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    const AblationStatus s = job.Status();
    INFO(s.error);
    REQUIRE(s.outcome != nullptr);
    CHECK(s.outcome->domains == std::vector<std::string>{d.domains[0]});
    CHECK(s.outcome->policies[1].tokens.back() < o.policies[1].tokens.back());
  }

  SECTION("top-r and top-k requests") {
    view.set_target(AblationRequest::Target::kTopK);
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    REQUIRE(job.Status().outcome != nullptr);
    CHECK(job.Status().outcome->policies[1].name == "k1");
    view.set_target(AblationRequest::Target::kTopR);
    job.Start(view.MakeRequest(d, sel));
    job.Wait();
    REQUIRE(job.Status().outcome != nullptr);
    CHECK(job.Status().outcome->policies[1].name == "top-r1");
  }
}

TEST_CASE("ablation job: cancel and errors", "[gui][ablation]") {
  const StudioData d = SmallTraceData();
  AblationJob job;
  AblationView view;
  Selection sel;
  sel.experts = {1};
  job.Start(view.MakeRequest(d, sel));
  job.Cancel();
  job.Wait();
  AblationStatus s = job.Status();
  CHECK(!s.running);
  CHECK(s.error.empty());
  CHECK((s.cancelled || s.outcome != nullptr));  // it may finish before the cancel lands

  sel.experts.clear();  // nothing selected to disable
  job.Start(view.MakeRequest(d, sel));
  job.Wait();
  s = job.Status();
  CHECK(s.error.find("select the experts") != std::string::npos);

  AblationRequest no_model = view.MakeRequest(d, sel);
  no_model.model_dir.clear();
  job.Start(no_model);
  job.Wait();
  CHECK(job.Status().error.find("no model") != std::string::npos);
}
