#include "fuzz/fuzz_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace moe::fuzz {

namespace {
volatile int64_t sink;
}  // namespace

InputFile::InputFile(const std::string& suffix) {
  // The process id keeps parallel fuzzing jobs (-jobs=N) from sharing a file.
  path_ = std::filesystem::temp_directory_path() /
          ("moescope-fuzz-" + std::to_string(getpid()) + suffix);
}

InputFile::~InputFile() {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

const std::filesystem::path& InputFile::Write(const uint8_t* data, size_t size) {
  std::ofstream out(path_, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror("moescope fuzz: cannot write the input file");
    std::abort();
  }
  return path_;
}

void TouchBytes(const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum += bytes[i];
  Keep(sum);
}

void Keep(int64_t value) {
  sink = value;
}

std::filesystem::path FixturePath(const std::string& relative) {
  return std::filesystem::path(MOESCOPE_FIXTURE_DIR) / relative;
}

}  // namespace moe::fuzz
