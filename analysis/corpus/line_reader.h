#pragma once
// Lines of a text file with a bound on their length: a line longer than the bound is an Error
// naming "<file>:<line>" before more than the bound is held in memory (std::getline would grow
// the line without limit).
#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace moe {

class LineReader {
 public:
  // `name` names the file in errors.
  LineReader(std::istream& in, std::string name, size_t max_line_bytes);

  // The next line, without its '\n'; false at the end of the input.
  bool Next(std::string& line);
  // 1-based number of the line Next returned last.
  int64_t line_number() const { return line_number_; }

 private:
  bool Refill();

  std::istream& in_;
  std::string name_;
  size_t max_line_bytes_;
  std::vector<char> buffer_;
  size_t begin_ = 0, end_ = 0;
  int64_t line_number_ = 0;
};

}  // namespace moe
