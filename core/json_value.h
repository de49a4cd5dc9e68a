#pragma once
// Reading JSON where it enters: files (a regular file, read whole, parsed strictly so trailing
// content is an error) and typed values (integers range-checked before they are narrowed, floats
// checked finite and within float32). Every error names the file (`where`) and the field, and
// echoes at most a clipped piece of the input (Clipped, core/error.h).
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moe {

// The file's content as JSON. Errors: not a regular file (a folder, missing), unreadable, too
// large to hold, not valid JSON or followed by anything but whitespace.
nlohmann::json ReadJsonFile(const std::filesystem::path& path);
// `text` as JSON, strictly (trailing content is an error); errors name `where`.
nlohmann::json ParseJson(std::string_view text, const std::string& where);

// v clipped for a message: its JSON text, at most kEchoBytes of it.
std::string Shown(const nlohmann::json& v);

// An integer in [lo, hi]. A float (1.5, and also 4.0), a string, or an integer outside the range
// is an Error "<where>: <field> must be an integer in [lo, hi], got <v>".
int64_t JsonInt(const nlohmann::json& v, const std::string& where, const std::string& field,
                int64_t lo, int64_t hi);

// JsonInt narrowed to T; the range is [lo, hi] intersected with T's.
template <typename T>
T JsonIntAs(const nlohmann::json& v, const std::string& where, const std::string& field,
            T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  return static_cast<T>(
      JsonInt(v, where, field, static_cast<int64_t>(lo), static_cast<int64_t>(hi)));
}

// A finite number that fits a float32 and lies in [lo, hi]; an integer is accepted as a number.
float JsonFloat(const nlohmann::json& v, const std::string& where, const std::string& field,
                float lo = std::numeric_limits<float>::lowest(),
                float hi = std::numeric_limits<float>::max());

}  // namespace moe
