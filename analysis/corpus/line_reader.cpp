#include "analysis/corpus/line_reader.h"

#include <cstring>

#include "core/error.h"

namespace moe {

LineReader::LineReader(std::istream& in, std::string name, size_t max_line_bytes)
    : in_(in), name_(std::move(name)), max_line_bytes_(max_line_bytes), buffer_(size_t{1} << 16) {}

bool LineReader::Refill() {
  in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  if (in_.bad()) Fail(name_, "read error");
  begin_ = 0;
  end_ = static_cast<size_t>(in_.gcount());
  return end_ > 0;
}

bool LineReader::Next(std::string& line) {
  line.clear();
  bool read_any = false;
  while (true) {
    if (begin_ == end_ && !Refill()) {
      if (!read_any) return false;
      break;  // a last line without '\n'
    }
    read_any = true;
    const char* from = buffer_.data() + begin_;
    const char* newline = static_cast<const char*>(std::memchr(from, '\n', end_ - begin_));
    const size_t take = newline ? static_cast<size_t>(newline - from) : end_ - begin_;
    if (line.size() + take > max_line_bytes_)
      Fail(name_ + ":" + std::to_string(line_number_ + 1),
           "line is longer than " + std::to_string(max_line_bytes_) + " bytes (the limit)");
    line.append(from, take);
    begin_ += take;
    if (newline) {
      ++begin_;
      break;
    }
  }
  ++line_number_;
  return true;
}

}  // namespace moe
