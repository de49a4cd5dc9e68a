#include "core/torch_checkpoint.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/torch_pickle.h"
#include "core/zip_archive.h"

namespace moe {

namespace {

using torch_pickle::Kind;
using torch_pickle::KindName;
using torch_pickle::Pickle;
using torch_pickle::Ref;
using torch_pickle::Unpickle;
using torch_pickle::Value;

// torch.save has written zip archives since PyTorch 1.6; older files are one bare pickle.
void RequireZip(const std::string& path, const uint8_t* bytes, size_t size) {
  if (HasZipEndRecord(bytes, size)) return;
  if (size >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) {
    Fail(path,
         "a legacy (pre-zip, PyTorch < 1.6) torch.save file, which moescope does not "
         "read; re-save it with a newer PyTorch or convert it to safetensors");
  }
  Fail(path,
       "not a zip archive (no end-of-central-directory record), so not a torch.save "
       "checkpoint");
}

// torch.save puts everything under one folder named after the file it first wrote to.
std::string FindArchivePrefix(const std::string& path, const ZipEntries& entries) {
  std::string prefix;
  for (const auto& [name, entry] : entries) {
    const size_t slash = name.find('/');
    if (slash == std::string::npos || slash == 0 || name.substr(slash + 1) != "data.pkl") {
      continue;
    }
    if (!prefix.empty()) {
      Fail(path, "holds two pickles ('" + prefix + "/data.pkl' and '" + name +
                     "'), expected one torch.save archive");
    }
    prefix = name.substr(0, slash);
  }
  if (prefix.empty()) {
    Fail(path, "a zip archive without '<name>/data.pkl', so not a torch.save checkpoint");
  }
  return prefix;
}

bool IsContiguous(const Shape& shape, const Shape& stride) {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && stride[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

// Gathers a strided view into row-major order, one element at a time (rare: only tensors that
// were saved as non-contiguous views).
std::vector<uint8_t> CopyStrided(const uint8_t* base, size_t elem, const Shape& shape,
                                 const Shape& stride) {
  const int64_t numel = NumElements(shape);
  std::vector<uint8_t> out(static_cast<size_t>(numel) * elem);
  std::vector<int64_t> index(shape.size(), 0);
  int64_t src = 0;  // element offset of `index`
  for (int64_t n = 0; n < numel; ++n) {
    std::memcpy(out.data() + n * elem, base + src * elem, elem);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) {
        src += stride[d];
        break;
      }
      src -= (shape[d] - 1) * stride[d];
      index[d] = 0;
    }
  }
  return out;
}

struct Archive {
  const uint8_t* bytes = nullptr;  // the whole mapped file
  ZipEntries entries;
  std::string prefix;  // the folder holding data.pkl and data/<storage key>
};

Shape IntTuple(const Pickle& pickle, Ref r, const std::string& where, const char* what) {
  const Value& tuple = pickle.at(r);
  if (tuple.kind != Kind::kTuple) FailAbout(where, std::string(what) + " is not a tuple");
  Shape dims;
  for (Ref d : tuple.items) {
    const Value& v = pickle.at(d);
    if (v.kind != Kind::kInt || v.integer < 0) {
      FailAbout(where, std::string(what) + " holds something other than a non-negative int");
    }
    dims.push_back(v.integer);
  }
  return dims;
}

// One state dict entry, `_rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata])`, checked against the archive: where it lies in the
// mapped storage, and its strides when it is not contiguous (copied only when asked for).
TorchCheckpointFile::StoredTensor RebuildTensor(const Pickle& pickle, const Value& tensor,
                                                const Archive& archive, const std::string& where) {
  const std::vector<Ref>& args = tensor.items;
  if (args.size() != 6 && args.size() != 7) {
    FailAbout(where, "_rebuild_tensor_v2 gets " + std::to_string(args.size()) +
                         " arguments, expected 6 or 7");
  }
  const Value& storage = pickle.at(args[0]);
  const Value& offset_value = pickle.at(args[1]);
  if (storage.kind != Kind::kStorage) FailAbout(where, "is not built from a storage");
  if (offset_value.kind != Kind::kInt || offset_value.integer < 0) {
    FailAbout(where, "has a storage offset that is not a non-negative int");
  }
  const int64_t offset = offset_value.integer;
  const Shape shape = IntTuple(pickle, args[2], where, "size");
  const Shape stride = IntTuple(pickle, args[3], where, "stride");
  if (shape.size() != stride.size()) {
    FailAbout(where, "has size " + ShapeString(shape) + " but stride " + ShapeString(stride));
  }

  const std::string storage_name = archive.prefix + "/data/" + storage.text;
  auto entry = archive.entries.find(storage_name);
  if (entry == archive.entries.end()) {
    FailAbout(where,
              "uses storage " + Quoted(storage_name) + ", which is missing from the archive");
  }
  const size_t elem = DTypeSize(storage.dtype);
  // Compared by division: a hostile numel times the element size could overflow.
  if (entry->second.size % elem != 0 ||
      entry->second.size / elem != static_cast<uint64_t>(storage.integer)) {
    FailAbout(where, "uses storage " + Quoted(storage_name) + " of " +
                         std::to_string(entry->second.size) +
                         " bytes, but the pickle says it holds " + std::to_string(storage.integer) +
                         " " + DTypeName(storage.dtype) + " elements");
  }

  // The last element the view touches must lie inside the storage.
  int64_t numel = 1;
  int64_t last = offset;
  bool overflow = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    overflow |= __builtin_mul_overflow(numel, shape[d], &numel);
    int64_t reach = 0;
    if (shape[d] > 0) {
      overflow |= __builtin_mul_overflow(shape[d] - 1, stride[d], &reach);
      overflow |= __builtin_add_overflow(last, reach, &last);
    }
  }
  if (overflow || (numel > 0 && last >= storage.integer)) {
    FailAbout(where, "with storage offset " + std::to_string(offset) + ", size " +
                         ShapeString(shape) + " and stride " + ShapeString(stride) +
                         " runs past the end of storage " + Quoted(storage_name) + " (" +
                         std::to_string(storage.integer) + " elements)");
  }

  // An empty tensor may carry any offset; it must not point outside the mapping.
  const uint8_t* base = archive.bytes + entry->second.data_offset;
  TensorView view{storage.dtype, shape, numel > 0 ? base + offset * elem : base};
  if (IsContiguous(shape, stride)) return {view, {}};
  // Views whose elements do not overlap fit in their storage; only repeated elements (stride 0)
  // can be larger, and their copy would let a small file claim any amount of memory.
  if (numel > storage.integer) {
    FailAbout(where, "has size " + ShapeString(shape) + " and stride " + ShapeString(stride) +
                         ", which repeat the " + std::to_string(storage.integer) +
                         " elements of storage " + Quoted(storage_name) + " into " +
                         std::to_string(numel) +
                         " elements; moescope does not expand such views (save "
                         "tensor.contiguous() instead)");
  }
  return {view, stride};
}

}  // namespace

TorchCheckpointFile::TorchCheckpointFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  Archive archive;
  archive.bytes = file_->data();
  RequireZip(path, file_->data(), file_->size());
  archive.entries = ReadZipEntries(path, file_->data(), file_->size());
  archive.prefix = FindArchivePrefix(path, archive.entries);
  const ZipEntry& data_pkl = archive.entries.at(archive.prefix + "/data.pkl");

  const Pickle pickle = Unpickle(path + ": " + archive.prefix + "/data.pkl",
                                 archive.bytes + data_pkl.data_offset, data_pkl.size);
  const Value& root = pickle.at(pickle.root);
  if (root.kind != Kind::kDict) {
    Fail(path, std::string("the pickle holds a ") + KindName(root.kind) +
                   ", expected a state dict (a dict of tensors)");
  }
  for (size_t i = 0; i + 1 < root.items.size(); i += 2) {
    const Value& key = pickle.at(root.items[i]);
    const Value& value = pickle.at(root.items[i + 1]);
    if (key.kind != Kind::kString) {
      Fail(path,
           std::string("state dict has a key of type ") + KindName(key.kind) + ", expected str");
    }
    const std::string where = path + ": tensor " + Quoted(key.text);
    if (value.kind != Kind::kTensor) {
      FailAbout(where, std::string("is a ") + KindName(value.kind) +
                           ", not a tensor; only a flat state dict of tensors is supported (not "
                           "nested containers such as {'model': {...}} or optimizer state)");
    }
    tensors_[key.text] = RebuildTensor(pickle, value, archive, where);
  }
}

std::vector<std::string> TorchCheckpointFile::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) names.push_back(name);
  return names;
}

TensorView TorchCheckpointFile::Tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) Fail(path(), "no tensor " + Quoted(name));
  const StoredTensor& stored = it->second;
  if (stored.stride.empty()) return stored.view;

  std::lock_guard<std::mutex> lock(copies_mutex_);
  auto copy = copies_.find(name);
  if (copy == copies_.end()) {
    const TensorView& v = stored.view;
    copy = copies_
               .emplace(name, CopyStrided(static_cast<const uint8_t*>(v.data), DTypeSize(v.dtype),
                                          v.shape, stored.stride))
               .first;
  }
  return {stored.view.dtype, stored.view.shape, copy->second.data()};
}

}  // namespace moe
