#pragma once
// Where tests find their inputs and put their outputs.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

// Upstream's golden outputs (tests/golden). MOESCOPE_GOLDEN_DIR in the environment wins over the
// path compiled in, so an installed test binary can be pointed at a copy.
inline std::filesystem::path GoldenDir() {
  const char* env = std::getenv("MOESCOPE_GOLDEN_DIR");
#ifdef MOESCOPE_GOLDEN_DIR
  const std::filesystem::path dir = env != nullptr && *env != '\0' ? env : MOESCOPE_GOLDEN_DIR;
#else
  const std::filesystem::path dir = env != nullptr ? env : "";
#endif
  if (!std::filesystem::is_directory(dir)) {
    FAIL("golden folder '" << dir.string()
                           << "' is missing; set MOESCOPE_GOLDEN_DIR to the tests/golden folder");
  }
  return dir;
}

// Small checked-in inputs (tests/fixtures).
inline std::filesystem::path FixtureDir() {
#ifdef MOESCOPE_FIXTURE_DIR
  const std::filesystem::path dir = MOESCOPE_FIXTURE_DIR;
#else
  const std::filesystem::path dir = "tests/fixtures";
#endif
  if (!std::filesystem::is_directory(dir)) {
    FAIL("fixture folder '" << dir.string() << "' is missing");
  }
  return dir;
}

namespace moescope_test {
// This run's scratch root; removed when the test binary exits, so runs leave nothing behind.
struct TempRoot {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("moescope-test-" + std::to_string(::getpid()));
  ~TempRoot() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};
inline TempRoot temp_root;
}  // namespace moescope_test

// A fresh, empty folder under the system temp dir. The process id in the path keeps parallel
// test runs (ctest -j) apart.
inline std::filesystem::path TempDir(const std::string& name) {
  const std::filesystem::path dir = moescope_test::temp_root.path / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A model folder copied from a fixture into a fresh temporary folder, for breaking one file of it.
inline std::filesystem::path CopyModel(const std::filesystem::path& from, const std::string& name) {
  const std::filesystem::path dir = TempDir(name);
  for (const auto& entry : std::filesystem::directory_iterator(from))
    std::filesystem::copy_file(entry.path(), dir / entry.path().filename());
  return dir;
}
