#include "core/safetensors_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {

namespace {

using nlohmann::json;

constexpr size_t kLengthBytes = 8;  // the u64 header length that opens every file

uint64_t ReadU64LE(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Shape from the header; dims must be non-negative integers whose product fits in int64.
Shape ParseShape(const std::string& where, const json& j) {
  auto fail = [&] {
    FailAbout(where, "has shape " + j.dump() + ", expected a list of non-negative integers");
  };
  if (!j.is_array()) fail();
  Shape shape;
  int64_t numel = 1;
  for (const json& d : j) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t{INT64_MAX}) fail();
    shape.push_back(d.get<int64_t>());
    if (__builtin_mul_overflow(numel, shape.back(), &numel)) {
      FailAbout(where, "has shape " + j.dump() + ", too many elements");
    }
  }
  return shape;
}

struct Extent {
  std::string name;
  uint64_t begin;
  uint64_t end;
};

Extent ParseOffsets(const std::string& where, const std::string& name, const json& j) {
  const bool ok = j.is_array() && j.size() == 2 && j[0].is_number_unsigned() &&
                  j[1].is_number_unsigned() && j[0].get<uint64_t>() <= j[1].get<uint64_t>();
  if (!ok) {
    FailAbout(where, "has data_offsets " + j.dump() + ", expected [begin, end] with begin <= end");
  }
  return {name, j[0].get<uint64_t>(), j[1].get<uint64_t>()};
}

std::string OffsetsString(const Extent& e) {
  std::string s = "[";  // appended for the same GCC 12 warning as in Quoted
  s += std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  return s;
}

std::map<std::string, std::string> ParseMetadata(const std::string& path, const json& j) {
  std::map<std::string, std::string> metadata;
  if (!j.is_object()) Fail(path, "__metadata__ is " + j.dump() + ", expected an object");
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) {
      Fail(path, "__metadata__ entry '" + key + "' is " + value.dump() + ", expected a string");
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

// A JSON parser callback that refuses a key given twice in one object. nlohmann::json keeps the
// last value of a repeated key, so a header naming a tensor twice would silently load only the
// second entry; the safetensors format has one entry per name.
json::parser_callback_t RefuseDuplicateKeys(const std::string& path) {
  auto open_objects = std::make_shared<std::vector<std::set<std::string>>>();
  return [path, open_objects](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects->emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects->pop_back();
    } else if (event == json::parse_event_t::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects->back().insert(key).second) {
        if (depth == 1) FailAbout(path + ": tensor " + Quoted(key), "appears twice in the header");
        Fail(path, "header has key " + Quoted(key) + " twice in one object");
      }
    }
    return true;
  };
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  const uint8_t* bytes = file_->data();
  const size_t size = file_->size();
  if (size < kLengthBytes) {
    Fail(path, "file is " + std::to_string(size) +
                   " bytes, too short for the 8-byte header length of a safetensors file");
  }
  const uint64_t header_len = ReadU64LE(bytes);
  if (header_len > size - kLengthBytes) {
    Fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + kLengthBytes);
  json header;
  try {
    header = json::parse(header_begin, header_begin + header_len, RefuseDuplicateKeys(path));
  } catch (const json::exception& e) {
    Fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(path, "header is not a JSON object");

  const uint8_t* data = bytes + kLengthBytes + header_len;
  const uint64_t data_size = size - kLengthBytes - header_len;
  std::vector<Extent> extents;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = ParseMetadata(path, entry);
      continue;
    }
    const std::string where = path + ": tensor " + Quoted(name);
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      FailAbout(where,
                "is " + entry.dump() + ", expected {\"dtype\", \"shape\", \"data_offsets\"}");
    }
    const json& dtype_json = entry["dtype"];
    const std::optional<DType> dtype =
        dtype_json.is_string() ? ParseDType(dtype_json.get<std::string>()) : std::nullopt;
    if (!dtype) FailAbout(where, "has unknown dtype " + dtype_json.dump());

    TensorView view{*dtype, ParseShape(where, entry["shape"]), nullptr};
    const Extent extent = ParseOffsets(where, name, entry["data_offsets"]);
    if (extent.end > data_size) {
      FailAbout(where, "is truncated: data_offsets " + OffsetsString(extent) +
                           " run past the end of the data section (" + std::to_string(data_size) +
                           " bytes)");
    }
    uint64_t expected_bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(view.numel()), DTypeSize(view.dtype),
                               &expected_bytes) ||
        extent.end - extent.begin != expected_bytes) {
      FailAbout(where, "has " + std::to_string(extent.end - extent.begin) +
                           " bytes (data_offsets " + OffsetsString(extent) + "), but " +
                           DTypeName(view.dtype) + " " + ShapeString(view.shape) + " needs " +
                           std::to_string(expected_bytes));
    }
    view.data = data + extent.begin;
    tensors_.emplace(name, view);
    extents.push_back(extent);
  }

  // Sorted by start, any overlap shows up between neighbours.
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent& a = extents[i - 1];
    const Extent& b = extents[i];
    if (b.begin < a.end) {
      Fail(path, "tensors " + Quoted(a.name) + " and " + Quoted(b.name) +
                     " overlap (data_offsets " + OffsetsString(a) + " and " + OffsetsString(b) +
                     ")");
    }
  }
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) names.push_back(name);
  return names;
}

TensorView SafetensorsFile::Tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) Fail(path(), "no tensor " + Quoted(name));
  return it->second;
}

namespace {

// The file under its temporary name (atomic_file.h's PendingFile), written with POSIX calls;
// Commit() syncs it and renames it into place. Destroyed uncommitted, the temporary is removed.
class SafetensorsOutput {
 public:
  explicit SafetensorsOutput(const std::string& target) : target_(target), pending_(target) {
    fd_ = ::open(pending_.temp().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                 0644);
    if (fd_ < 0)
      Fail(target_, "cannot create " + pending_.temp().string() + ": " + std::strerror(errno));
  }
  SafetensorsOutput(const SafetensorsOutput&) = delete;
  SafetensorsOutput& operator=(const SafetensorsOutput&) = delete;
  ~SafetensorsOutput() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Write(const void* data, size_t n) { WriteFully(fd_, data, n, target_); }

  void Commit() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) Fail(target_, std::string("cannot be written: ") + std::strerror(errno));
    pending_.Commit();
  }

 private:
  std::string target_;
  PendingFile pending_;
  int fd_ = -1;
};

std::string BuildHeader(const std::string& path, const std::vector<NamedView>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  // Keys in the order the safetensors reference writer uses (metadata, then tensors in file
  // order; dtype, shape, data_offsets), so rewriting a file in the same order reproduces it.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const NamedView& t : tensors) {
    const std::string where = path + ": tensor " + Quoted(t.name);
    if (t.name.empty() || t.name == "__metadata__") FailAbout(where, "is not a valid tensor name");
    if (!seen.insert(t.name).second) FailAbout(where, "is given twice");
    for (int64_t d : t.view.shape) {
      if (d < 0) FailAbout(where, "has negative shape " + ShapeString(t.view.shape));
    }
    const uint64_t nbytes = t.view.nbytes();
    if (nbytes > 0 && t.view.data == nullptr) FailAbout(where, "has no data");
    header[t.name] = {{"dtype", DTypeName(t.view.dtype)},
                      {"shape", t.view.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    Fail(path, std::string("cannot encode the header (names must be UTF-8): ") + e.what());
  }
  // Padding keeps the data section 8-byte aligned relative to the file start.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void WriteSafetensors(const std::string& path, const std::vector<NamedView>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = BuildHeader(path, tensors, metadata);
  uint8_t length[kLengthBytes];
  for (size_t i = 0; i < kLengthBytes; ++i)
    length[i] = static_cast<uint8_t>(header.size() >> (8 * i));

  SafetensorsOutput out(path);
  out.Write(length, sizeof length);
  out.Write(header.data(), header.size());
  for (const NamedView& t : tensors) out.Write(t.view.data, t.view.nbytes());
  out.Commit();
}

void WriteSafetensors(const std::string& path, const std::vector<OwnedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<NamedView> views;
  views.reserve(tensors.size());
  for (const OwnedTensor& t : tensors) views.push_back({t.name, t.view()});
  WriteSafetensors(path, views, metadata);
}

}  // namespace moe
