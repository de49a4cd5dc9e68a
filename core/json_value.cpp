#include "core/json_value.h"

#include <cmath>
#include <new>
#include <sstream>

#include "core/error.h"
#include "core/input_file.h"

namespace moe {

using nlohmann::json;

namespace {

std::string Range(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

}  // namespace

json ParseJson(std::string_view text, const std::string& where) {
  try {
    // parse() from a buffer checks that nothing but whitespace follows the value (unlike
    // `stream >> j`, which stops after the first value).
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // The parser's message quotes what it last read, which may be the whole input.
    Fail(where, "is not valid JSON (" + Clipped(e.what()) + ")");
  }
}

json ReadJsonFile(const std::filesystem::path& path) {
  const std::string text = ReadInputFile(path, "a JSON file");
  try {
    return ParseJson(text, path.string());
  } catch (const std::bad_alloc&) {
    Fail(path.string(), "is too large to parse into memory");
  }
}

std::string Shown(const json& v) {
  return Clipped(v.dump());
}

int64_t JsonInt(const json& v, const std::string& where, const std::string& field, int64_t lo,
                int64_t hi) {
  const auto bad = [&] {
    Fail(where, field + " must be an integer in " + Range(lo, hi) + ", got " + Shown(v));
  };
  if (v.is_number_unsigned()) {
    // Above INT64_MAX no range of ours can hold it; compare unsigned to avoid wrapping.
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) bad();
  } else if (!v.is_number_integer()) {
    bad();
  }
  const int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) bad();
  return n;
}

float JsonFloat(const json& v, const std::string& where, const std::string& field, float lo,
                float hi) {
  if (!v.is_number()) Fail(where, field + " must be a number, got " + Shown(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max())
    Fail(where, field + " is " + Shown(v) + ", outside the range of a 32-bit float");
  if (x < lo || x > hi) {
    std::ostringstream range;
    range << "[" << lo << ", " << hi << "]";
    Fail(where, field + " must be in " + range.str() + ", got " + Shown(v));
  }
  return static_cast<float>(x);
}

}  // namespace moe
