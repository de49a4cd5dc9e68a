#include "core/int_array.h"

#include <cstring>

#include "core/error.h"
#include "core/input_file.h"
#include "core/safetensors_file.h"

namespace moe {
namespace {

// The value of `key` in the header dict, e.g. "'<i8'" or "(3, 2)": up to the next top-level
// comma or the closing brace.
std::string HeaderValue(const std::string& header, const std::string& key,
                        const std::string& path) {
  const size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) Fail(path, "the .npy header has no '" + key + "'");
  size_t begin = header.find(':', at);
  if (begin == std::string::npos) Fail(path, "the .npy header's '" + key + "' has no value");
  ++begin;
  int depth = 0;
  size_t end = begin;
  for (; end < header.size(); ++end) {
    const char ch = header[end];
    if (ch == '(') ++depth;
    if (ch == ')') --depth;
    if (depth == 0 && (ch == ',' || ch == '}')) break;
  }
  std::string v = header.substr(begin, end - begin);
  const size_t a = v.find_first_not_of(" "), b = v.find_last_not_of(" ");
  return a == std::string::npos ? "" : v.substr(a, b - a + 1);
}

Shape ParseShape(std::string v, const std::string& path) {
  if (v.size() < 2 || v.front() != '(' || v.back() != ')')
    Fail(path, "the .npy header's shape '" + v + "' is not a tuple");
  Shape shape;
  std::string number;
  for (size_t i = 1; i < v.size(); ++i) {
    const char ch = v[i];
    if (ch >= '0' && ch <= '9') {
      number += ch;
    } else if (ch == ',' || ch == ')') {
      if (!number.empty()) shape.push_back(std::stoll(number));
      number.clear();
    } else if (ch != ' ') {
      Fail(path, "the .npy header's shape '" + v + "' is not a tuple of sizes");
    }
  }
  return shape;
}

IntArray ReadNpy(const std::filesystem::path& file) {
  const std::string path = file.string();
  const std::string bytes = ReadInputFile(file, "a .npy file");
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    Fail(path, "is not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) Fail(path, "the .npy header is truncated");
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    Fail(path, "has .npy format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (offset + header_len > bytes.size()) Fail(path, "the .npy header is truncated");
  const std::string header = bytes.substr(offset, header_len);
  const std::string descr = HeaderValue(header, "descr", path);
  if (HeaderValue(header, "fortran_order", path) != "False")
    Fail(path, "is a Fortran-order .npy array; save it in C order");
  // descr: '<i8', '|u1', ...: byte order, kind, size.
  if (descr.size() != 5 || descr[0] != '\'' || descr[4] != '\'' ||
      !(descr[1] == '<' || descr[1] == '|') || !(descr[2] == 'i' || descr[2] == 'u') ||
      !(descr[3] == '1' || descr[3] == '2' || descr[3] == '4' || descr[3] == '8'))
    Fail(path, "has dtype " + descr + "; expected a little-endian integer type (<i4, <i8, ...)");
  const bool is_signed = descr[2] == 'i';
  const size_t width = static_cast<size_t>(descr[3] - '0');
  IntArray a;
  a.shape = ParseShape(HeaderValue(header, "shape", path), path);
  const int64_t n = NumElements(a.shape);
  const size_t data = offset + header_len;
  if (bytes.size() - data != static_cast<size_t>(n) * width)
    Fail(path, "holds " + std::to_string(bytes.size() - data) + " data bytes; shape " +
                   ShapeString(a.shape) + " of " + std::to_string(width) + "-byte integers needs " +
                   std::to_string(static_cast<size_t>(n) * width));
  a.values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = 0;
    std::memcpy(&u, bytes.data() + data + static_cast<size_t>(i) * width, width);
    int64_t v = static_cast<int64_t>(u);
    if (is_signed && width < 8 && (u >> (8 * width - 1)) & 1) v -= int64_t{1} << (8 * width);
    a.values[static_cast<size_t>(i)] = v;
  }
  return a;
}

IntArray ReadSafetensorsTensor(const std::filesystem::path& file, const std::string& name) {
  const SafetensorsFile st(file.string());
  const TensorView t = st.Tensor(name);
  IntArray a;
  a.shape = t.shape;
  const int64_t n = NumElements(t.shape);
  a.values.resize(static_cast<size_t>(n));
  const auto* p = static_cast<const uint8_t*>(t.data);
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = 0;
    switch (t.dtype) {
      case DType::kI16: {
        int16_t x;
        std::memcpy(&x, p + i * 2, 2);
        v = x;
        break;
      }
      case DType::kI32: {
        int32_t x;
        std::memcpy(&x, p + i * 4, 4);
        v = x;
        break;
      }
      case DType::kI64:
        std::memcpy(&v, p + i * 8, 8);
        break;
      case DType::kU8:
        v = p[i];
        break;
      default:
        Fail(file.string(), "tensor '" + name + "' has dtype " + DTypeName(t.dtype) +
                                "; expected an integer type (I16, I32, I64, U8)");
    }
    a.values[static_cast<size_t>(i)] = v;
  }
  if (n == 0 && !(t.dtype == DType::kI16 || t.dtype == DType::kI32 || t.dtype == DType::kI64 ||
                  t.dtype == DType::kU8))
    Fail(file.string(), "tensor '" + name + "' is not an integer tensor");
  return a;
}

}  // namespace

bool IsSafetensorsPath(const std::filesystem::path& path) {
  return path.extension() == ".safetensors";
}

IntArray ReadIntArray(const std::filesystem::path& path, const std::string& tensor) {
  if (IsSafetensorsPath(path)) {
    CheckInputFile(path, "a .safetensors file");
    return ReadSafetensorsTensor(path, tensor);
  }
  return ReadNpy(path);
}

}  // namespace moe
