#pragma once
// CSV output of the views (RFC 4180 quoting).
#include <cmath>
#include <ostream>
#include <string>

namespace moe::studio {

// The field quoted when it holds a comma, quote, CR or LF.
std::string CsvField(const std::string& s);
// A number with full precision; NaN as an empty field.
std::string CsvNumber(double v);

}  // namespace moe::studio
