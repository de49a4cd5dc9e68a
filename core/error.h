#pragma once
// One exception type for every failure the engine reports. Messages name the file and the field
// that was wrong, so the CLI can print them on one line and exit non-zero.
#include <stdexcept>
#include <string>
#include <string_view>

namespace moe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "<where>: <what>", the shape of every message the engine throws.
[[noreturn]] inline void Fail(const std::string& where, const std::string& what) {
  throw Error(where + ": " + what);
}

// "<subject> <what>" for messages about a named thing: "<path>: tensor 'w' has shape [3]".
[[noreturn]] inline void FailAbout(const std::string& subject, const std::string& what) {
  throw Error(subject + " " + what);
}

// s in single quotes, for names inside messages.
inline std::string Quoted(std::string_view s) {
  // Built by appending: `"'" + s` trips a false -Wrestrict warning in GCC 12 at -O3.
  std::string quoted = "'";
  quoted.append(s).push_back('\'');
  return quoted;
}

}  // namespace moe
