// moescope: look inside LLaMA-MoE models. One file per subcommand; the logic lives in core/.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"moescope: run LLaMA-MoE models and look at their routing"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("moescope ") + MOESCOPE_VERSION);
  moe::cli::RegisterInfo(app);
  moe::cli::RegisterGenerate(app);
  moe::cli::RegisterScore(app);
  moe::cli::RegisterClassify(app);
  moe::cli::RegisterAnswer(app);
  moe::cli::RegisterConvert(app);
  moe::cli::RegisterForward(app);
  moe::cli::RegisterTrace(app);
  moe::cli::RegisterTokenize(app);
  moe::cli::RegisterStats(app);
  moe::cli::RegisterAblate(app);
  moe::cli::RegisterCompare(app);
  moe::cli::RegisterCacheSim(app);
  moe::cli::RegisterReplay(app);
  moe::cli::RegisterSplit(app);
  moe::cli::RegisterImportance(app);
  moe::cli::RegisterPrune(app);
  moe::cli::RegisterPruneCurve(app);
  moe::cli::RegisterMerge(app);
  for (int i = 0; i < argc; ++i) moe::cli::g_command_line += std::string(argv[i]) + '\0';
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& done) {  // --help, --version
    return app.exit(done);
  } catch (const CLI::ParseError& bad) {
    // Usage errors read like every other error: one line, exit code 1.
    std::cerr << "moescope: error: " << bad.what() << " (see moescope --help)\n";
    return 1;
  }
  return moe::cli::g_exit_code;
}
