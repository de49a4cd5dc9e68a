// A trace still being written (HDF5 SWMR): the loader shows its committed prefix, TraceWatch
// notices when more documents are committed, and loading it again shows them, with statistics
// that cover exactly the documents shown. The writer is another process (GrowingTrace).
#include <algorithm>

#include "analysis/stats/trace_load.h"
#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_reader.h"
#include "gui/model/studio_loader.h"
#include "gui/model/trace_watch.h"
#include "gui_test_util.h"

using namespace moe::studio;

TEST_CASE("a trace being written is shown as committed and refreshed as it grows",
          "[gui][loader][swmr]") {
  const moe::TraceReader source(gui_test::SmallTrace());
  gui_test::TempDir dir("refresh");
  const auto path = dir.path() / "growing.h5";
  gui_test::GrowingTrace writer(path, source.num_documents() / 2);
  const int64_t D = writer.documents(), first = writer.first();

  LoadOptions o;
  o.stats.bootstrap = 10;
  o.stats.permutations = 10;
  const LoadResult r1 = LoadStudioData(path, o);
  CHECK(!r1.data.trace.info.complete);
  CHECK(r1.data.trace.documents == first);
  CHECK(r1.data.documents.size() == static_cast<size_t>(first));
  CHECK(r1.data.trace.tokens == source.Document(first - 1).token_end);
  CHECK(std::find_if(r1.data.notes.begin(), r1.data.notes.end(), [](const std::string& n) {
          return n.find("incomplete") != std::string::npos;
        }) != r1.data.notes.end());

  TraceWatch watch(path, r1.data.trace.documents, r1.data.trace.info.complete);
  CHECK(!watch.Changed());  // nothing new yet
  writer.Grow();
  CHECK(watch.Changed());
  CHECK(watch.documents() == D);
  CHECK(!watch.complete());

  o.first_document = 1;  // the app keeps the selected document
  const LoadResult r2 = LoadStudioData(path, o);
  CHECK(!r2.data.trace.info.complete);
  CHECK(r2.data.trace.documents == D);
  CHECK(r2.data.documents.size() == static_cast<size_t>(D));
  CHECK(r2.data.trace.tokens == source.num_tokens());
  REQUIRE(r2.data.document != nullptr);
  CHECK(r2.data.document->index == 1);
  // The statistics cover every document now: load_count is the source trace's load.
  const ExpertMetric* load = r2.data.FindExpertMetric(moe::Metric::kLoadCount);
  REQUIRE(load != nullptr);
  const moe::ExpertStats all = moe::ComputeDomainLoad(source);
  const int M = r2.data.num_domains(), L = r2.data.trace.info.num_layers,
            E = r2.data.trace.info.num_experts;
  for (int l = 0; l < L; ++l)
    for (int e = 0; e < E; ++e)
      CHECK(load->At(M, l, e) ==
            static_cast<double>(all.load()[(static_cast<size_t>(M) * L + l) * E + e]));
  watch.Shown(r2.data.trace.documents, r2.data.trace.info.complete);
  CHECK(!watch.Changed());

  CHECK(writer.Complete());
  CHECK(watch.Changed());  // the same documents, now complete
  CHECK(watch.complete());
  const LoadResult r3 = LoadStudioData(path, o);
  CHECK(r3.data.trace.info.complete);
  CHECK(r3.data.trace.documents == D);
}
