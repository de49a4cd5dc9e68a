#pragma once
// A CSV file read back (RFC 4180: quoted fields, doubled quotes, CRLF or LF), for the readers of
// the tidy CSVs moescope writes (the pruning curve's comparison with random pruning, the route
// audit). Every error names the file and the field: "<file>: line 7, column 'q_value': 'x' is not
// a number".
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

class CsvTable {
 public:
  // Throws Error naming the file when it cannot be read, is empty, has an unterminated quote or
  // a row whose field count differs from the header's.
  static CsvTable Read(const std::filesystem::path& path);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& header() const { return header_; }
  size_t rows() const { return rows_.size(); }
  // Index of a header column; throws Error naming the file and the column when it is missing.
  int Column(const std::string& name) const;
  const std::string& Text(size_t row, int column) const;
  // A number (an empty field is NaN, as the writers leave missing values empty); anything else
  // is an Error naming the file, line and column.
  double Number(size_t row, int column) const;
  int64_t Integer(size_t row, int column) const;
  // "<file>: line N, column 'name'" for messages about one field.
  std::string Where(size_t row, int column) const;

 private:
  std::string path_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int64_t> lines_;  // [rows] line number of each row in the file (1-based)
};

}  // namespace moe
