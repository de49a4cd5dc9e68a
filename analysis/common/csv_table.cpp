#include "analysis/common/csv_table.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace moe {

namespace {

// Splits `text` into records of fields; `lines` gets the line each record starts on.
std::vector<std::vector<std::string>> ParseRecords(const std::string& text, const std::string& path,
                                                   std::vector<int64_t>& lines) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, field_started = false;
  int64_t line = 1, record_line = 1;
  auto end_field = [&] {
    record.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    if (!(record.size() == 1 && record[0].empty())) {  // blank lines are skipped
      records.push_back(std::move(record));
      lines.push_back(record_line);
    }
    record.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      record_line = ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) Fail(path, "line " + std::to_string(record_line) + ": a quoted field never ends");
  if (field_started || !record.empty()) end_record();
  return records;
}

}  // namespace

CsvTable CsvTable::Read(const std::filesystem::path& path) {
  CsvTable t;
  t.path_ = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(t.path_, "cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<int64_t> lines;
  std::vector<std::vector<std::string>> records = ParseRecords(text.str(), t.path_, lines);
  if (records.empty()) Fail(t.path_, "is empty (no header row)");
  t.header_ = std::move(records.front());
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != t.header_.size())
      Fail(t.path_, "line " + std::to_string(lines[r]) + " has " +
                        std::to_string(records[r].size()) + " fields, the header " +
                        std::to_string(t.header_.size()));
    t.rows_.push_back(std::move(records[r]));
    t.lines_.push_back(lines[r]);
  }
  return t;
}

int CsvTable::Column(const std::string& name) const {
  for (size_t c = 0; c < header_.size(); ++c)
    if (header_[c] == name) return static_cast<int>(c);
  Fail(path_, "has no column " + Quoted(name));
}

const std::string& CsvTable::Text(size_t row, int column) const {
  return rows_.at(row).at(static_cast<size_t>(column));
}

std::string CsvTable::Where(size_t row, int column) const {
  return path_ + ": line " + std::to_string(lines_.at(row)) + ", column " +
         Quoted(header_.at(static_cast<size_t>(column)));
}

double CsvTable::Number(size_t row, int column) const {
  const std::string& s = Text(row, column);
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE)
    throw Error(Where(row, column) + ": " + Quoted(Clipped(s)) + " is not a number");
  return v;
}

int64_t CsvTable::Integer(size_t row, int column) const {
  const std::string& s = Text(row, column);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE)
    throw Error(Where(row, column) + ": " + Quoted(Clipped(s)) + " is not an integer");
  return v;
}

}  // namespace moe
