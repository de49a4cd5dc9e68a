#pragma once
// One exception type for every failure the engine reports. Messages name the file and the field
// that was wrong, so the CLI can print them on one line and exit non-zero.
#include <cstddef>
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

// Input echoed inside a message (a JSON value, a parser's "last read" text, a line of a file),
// cut to a bounded length so that a hostile input cannot turn into a message of its own size:
// the first kEchoBytes bytes, then "... (N bytes)". Every message that quotes input goes
// through this.
inline constexpr size_t kEchoBytes = 160;
inline std::string Clipped(std::string_view input) {
  if (input.size() <= kEchoBytes) return std::string(input);
  // Cut at a UTF-8 character boundary so the message stays valid text.
  size_t cut = kEchoBytes;
  while (cut > 0 && (static_cast<unsigned char>(input[cut]) & 0xC0) == 0x80) --cut;
  std::string shown(input.substr(0, cut));
  shown.append("... (").append(std::to_string(input.size())).append(" bytes)");
  return shown;
}

}  // namespace moe
