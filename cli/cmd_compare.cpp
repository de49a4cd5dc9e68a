// moescope compare: routing differences between two traces over the same tokens (flip rate,
// top-k overlap, load drift; by domain and by margin); the logic lives in
// analysis/stats/routing_compare.h.
#include <iostream>

#include "analysis/stats/routing_compare.h"
#include "cli/common.h"

namespace moe::cli {
namespace {

struct CompareCommandOptions {
  std::string a, b, output;
  CompareOptions compare;
};

}  // namespace

void RegisterCompare(CLI::App& app) {
  auto o = std::make_shared<CompareCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Compare the routing of two traces over the same tokens (A is the reference)");
  cmd->add_option("a", o->a, "Reference trace (HDF5)")->required()->check(CLI::ExistingFile);
  cmd->add_option("b", o->b, "Trace to compare with it")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output,
                  "Folder for compare.csv and compare.json (and compare.h5 with --token-flips)");
  cmd->add_option("--margin-edges", o->compare.margin_edges,
                  "Edges of the margin bins (A's logit margin; last bin open-ended)")
      ->delimiter(',');
  cmd->add_flag("--token-flips", o->compare.token_flips,
                "Also write the per-token top-1 flip matrix [N, L] to compare.h5");
  cmd->callback([o] {
    g_exit_code = Guarded([&] {
      const CompareReport report = CompareTraces(o->a, o->b, o->compare);
      std::cout << FormatCompareTable(report);
      if (!o->output.empty()) ExportCompare(o->output, report);
    });
  });
}

}  // namespace moe::cli
