// moescope merge: joins trace shards (finished traces of consecutive parts of a corpus, made by
// separate runs) into one trace of HDF5 virtual datasets over them; the logic lives in
// analysis/trace/trace_merge.h.
#include <iostream>

#include "analysis/trace/trace_merge.h"
#include "cli/common.h"

namespace moe::cli {

void RegisterMerge(CLI::App& app) {
  struct Options {
    std::vector<std::string> shards;
    std::string output;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "Join finished trace shards, in order, into one trace of virtual datasets over them");
  cmd->add_option("shards", o->shards,
                  "Finished traces of one model and run settings, in corpus order")
      ->required();
  cmd->add_option("-o,--output", o->output,
                  "Merged trace (HDF5); keep the shards where they are, it reads from them")
      ->required();
  cmd->callback([o] {
    g_exit_code = Guarded([&] {
      const std::vector<std::filesystem::path> shards(o->shards.begin(), o->shards.end());
      std::cerr << FormatMergeSummary(MergeTraces(shards, o->output)) << "\n";
    });
  });
}

}  // namespace moe::cli
