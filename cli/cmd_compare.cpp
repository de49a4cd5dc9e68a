// moescope compare: routing differences between two traces over the same tokens (flip rate,
// top-k overlap, load drift; by domain and by quantile bins of A's margin, with intervals over
// documents); the logic lives in
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
  CLI::Option* bins =
      cmd->add_option("--margin-bins", o->compare.margin_bins,
                      "Quantile bins of A's top-k logit margin per layer (edges from the "
                      "observed margins of that layer; ties merge bins)")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
  cmd->add_option("--margin-edges", o->compare.margin_edges,
                  "Fixed margin bin edges for every layer instead, e.g. 0,0.1,0.25,0.5,1,2 "
                  "(last bin open-ended)")
      ->delimiter(',')
      ->excludes(bins);
  cmd->add_option("--ci-level", o->compare.ci_level,
                  "Level of the intervals over documents (flip rates, overlap, Jaccard)")
      ->capture_default_str();
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
