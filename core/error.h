#pragma once
// One exception type for every failure the engine reports. Messages name the file and the field
// that was wrong, so the CLI can print them on one line and exit non-zero.
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "<where>: <what>", the shape of every message the engine throws.
[[noreturn]] inline void Fail(const std::string& where, const std::string& what) {
  throw Error(where + ": " + what);
}

}  // namespace moe
