// Outputs replace regular files only: a symlink, FIFO, device or folder at an output path is an
// error naming the path, and what is there is left as it was.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "analysis/trace/trace_file.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors_file.h"
#include "trace_test_util.h"

using Catch::Contains;
namespace fs = std::filesystem;

TEST_CASE("outputs refuse to replace anything but a regular file", "[outputs][bad-input]") {
  const fs::path dir = TempDir("outputs");
  const fs::path target = dir / "kept.txt";
  moe::WriteFileAtomically(target, "kept\n");
  const fs::path link = dir / "link.out";
  fs::create_symlink(target, link);
  const fs::path fifo = dir / "fifo.out";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const fs::path folder = dir / "folder.out";
  fs::create_directory(folder);

  for (const auto& [path, what] :
       {std::pair{link, "a symbolic link"}, std::pair{fifo, "a FIFO"},
        std::pair{folder, "a folder"}, std::pair{fs::path("/dev/null"), "a device"}}) {
    INFO(path.string());
    CHECK_THROWS_WITH(moe::CheckReplaceable(path), Contains(path.string()) && Contains(what));
    CHECK_THROWS_WITH(moe::WriteFileAtomically(path, "x"), Contains(path.string()));
    CHECK_THROWS_WITH(moe::WriteSafetensors(path.string(), std::vector<moe::OwnedTensor>{}, {}),
                      Contains(path.string()));
  }
  // A trace is never created through a link either.
  moe::TraceHeader header;
  header.num_layers = 1;
  header.num_experts = 2;
  header.top_k = 1;
  header.score_scale_factor = {1.0f};
  header.domains = {"d"};
  CHECK_THROWS_WITH(moe::TraceFile::Create(link, header), Contains(link.string()));
  CHECK(trace_test::ReadText(target) == "kept\n");
  CHECK(fs::is_symlink(link));
  CHECK(fs::is_fifo(fifo));
  // Nothing there, or a regular file, is fine.
  CHECK_NOTHROW(moe::CheckReplaceable(dir / "absent"));
  CHECK_NOTHROW(moe::CheckReplaceable(target));

  // The command line: `forward --output` onto a link exits 1 with the path named.
  const fs::path input = dir / "in.json";
  moe::WriteFileAtomically(input, R"({"input_ids": [[1, 5, 9]]})");
  const trace_test::CommandResult r = trace_test::RunCommand(
      trace_test::Cli() + " forward --model " +
      trace_test::Quote(trace_test::TinyModel().string()) + " --input " +
      trace_test::Quote(input.string()) + " --output " + trace_test::Quote(link.string()));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Contains(link.string()) && Contains("symbolic link"));
  CHECK(trace_test::ReadText(target) == "kept\n");
}
