#include "core/torch_checkpoint.h"

#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "core/error.h"

namespace moe {

namespace {

// "<subject> <what>" for messages about a named thing: "<path>: tensor 'w' has shape [3]".
[[noreturn]] void FailAbout(const std::string& subject, const std::string& what) {
  throw Error(subject + " " + what);
}

std::string Quoted(std::string_view s) {
  // Built by appending: `"'" + s` trips a false -Wrestrict warning in GCC 12 at -O3.
  std::string quoted = "'";
  quoted.append(s).push_back('\'');
  return quoted;
}

// Bounds-checked little-endian reads from a byte range; running off the end is an Error whose
// message says what was being read.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, size_t pos, std::string where)
      : data_(data), size_(size), pos_(pos), where_(std::move(where)) {}

  size_t pos() const { return pos_; }
  bool AtEnd() const { return pos_ >= size_; }

  const uint8_t* Take(size_t n) {
    if (pos_ > size_ || n > size_ - pos_) FailAbout(where_, "runs past the end");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t Uint(size_t n) {
    const uint8_t* p = Take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Uint(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Uint(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  uint64_t U64() { return Uint(8); }
  std::string String(size_t n) {
    const uint8_t* p = Take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  std::string where_;
};

// ---------------------------------------------------------------------------------------------
// Zip archive: just enough to find stored (uncompressed) entries by name. torch.save writes
// entries with a data descriptor, so sizes come from the central directory, not local headers.

struct ZipEntry {
  uint64_t data_offset = 0;  // into the file
  uint64_t size = 0;
};

constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kCentralDirSig = 0x02014b50;
constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr size_t kEndOfCentralDirSize = 22;
constexpr size_t kZip64LocatorSize = 20;

struct CentralDirectory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

CentralDirectory FindCentralDirectory(const std::string& path, const uint8_t* bytes, size_t size) {
  // The end record sits at the very end, followed only by a comment of at most 64 KiB.
  size_t eocd = SIZE_MAX;
  if (size >= kEndOfCentralDirSize) {
    const size_t max_distance = kEndOfCentralDirSize + 0xffff;
    const size_t lowest = size > max_distance ? size - max_distance : 0;
    for (size_t pos = size - kEndOfCentralDirSize + 1; pos-- > lowest;) {
      const uint8_t* p = bytes + pos;
      const uint32_t sig = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
      if (sig == kEndOfCentralDirSig) {
        eocd = pos;
        break;
      }
    }
  }
  if (eocd == SIZE_MAX) {
    if (size >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) {
      Fail(path,
           "a legacy (pre-zip, PyTorch < 1.6) torch.save file, which moescope does not "
           "read; re-save it with a newer PyTorch or convert it to safetensors");
    }
    Fail(path,
         "not a zip archive (no end-of-central-directory record), so not a torch.save "
         "checkpoint");
  }

  Cursor c(bytes, size, eocd + 4, path + ": zip end-of-central-directory record");
  const uint16_t disk = c.U16();
  c.U16();  // disk holding the central directory
  c.U16();  // entries on this disk
  CentralDirectory dir{c.U16(), 0, 0};
  dir.size = c.U32();
  dir.offset = c.U32();
  if (disk != 0) Fail(path, "a multi-part zip archive, which torch.save never writes");

  // Archives over 4 GiB (real shards are ~10 GB) keep the true values in a ZIP64 record.
  if (dir.entries == 0xffff || dir.size == 0xffffffff || dir.offset == 0xffffffff) {
    if (eocd < kZip64LocatorSize) Fail(path, "zip ZIP64 locator is missing");
    Cursor loc(bytes, size, eocd - kZip64LocatorSize, path + ": zip ZIP64 locator");
    if (loc.U32() != kZip64LocatorSig) Fail(path, "zip ZIP64 locator is missing");
    loc.U32();  // disk
    const uint64_t record = loc.U64();
    Cursor r(bytes, size, record, path + ": zip ZIP64 end-of-central-directory record");
    if (record > size || r.U32() != kZip64EndOfCentralDirSig) {
      Fail(path, "zip ZIP64 end-of-central-directory record is missing at byte " +
                     std::to_string(record));
    }
    r.Take(8 + 2 + 2 + 4 + 4 + 8);  // record size, versions, disks, entries on this disk
    dir.entries = r.U64();
    dir.size = r.U64();
    dir.offset = r.U64();
  }
  if (dir.offset > size || dir.size > size - dir.offset) {
    Fail(path, "zip central directory (" + std::to_string(dir.size) + " bytes at " +
                   std::to_string(dir.offset) + ") runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }
  return dir;
}

std::unordered_map<std::string, ZipEntry> ReadZipEntries(const std::string& path,
                                                         const uint8_t* bytes, size_t size) {
  const CentralDirectory dir = FindCentralDirectory(path, bytes, size);
  std::unordered_map<std::string, ZipEntry> entries;
  Cursor c(bytes, dir.offset + dir.size, dir.offset, path + ": zip central directory");
  for (uint64_t i = 0; i < dir.entries; ++i) {
    if (c.U32() != kCentralDirSig) {
      Fail(path, "zip central directory entry " + std::to_string(i) + " has a bad signature");
    }
    c.Take(4);  // versions
    const uint16_t flags = c.U16();
    const uint16_t method = c.U16();
    c.Take(4 + 4);  // time, date, crc
    uint64_t compressed = c.U32();
    uint64_t uncompressed = c.U32();
    const uint16_t name_len = c.U16();
    const uint16_t extra_len = c.U16();
    const uint16_t comment_len = c.U16();
    c.Take(2 + 2 + 4);  // disk, attributes
    uint64_t local_offset = c.U32();
    const std::string name = c.String(name_len);
    const std::string where = path + ": zip entry " + Quoted(name);

    // ZIP64 extra field: the 64-bit values of exactly those fields that hold 0xffffffff, in
    // this order.
    Cursor extra(c.Take(extra_len), extra_len, 0, where + " extra field");
    while (!extra.AtEnd()) {
      const uint16_t id = extra.U16();
      const uint16_t len = extra.U16();
      Cursor field(extra.Take(len), len, 0, where + " ZIP64 extra field");
      if (id != 0x0001) continue;
      if (uncompressed == 0xffffffff) uncompressed = field.U64();
      if (compressed == 0xffffffff) compressed = field.U64();
      if (local_offset == 0xffffffff) local_offset = field.U64();
    }
    c.Take(comment_len);

    if (flags & 0x1) FailAbout(where, "is encrypted");
    if (method != 0) {
      FailAbout(where, "is compressed (zip method " + std::to_string(method) +
                           "); moescope reads only stored (uncompressed) entries, as torch.save "
                           "writes them");
    }
    if (compressed != uncompressed) {
      FailAbout(where, "is stored but its compressed size " + std::to_string(compressed) +
                           " differs from its size " + std::to_string(uncompressed));
    }

    // Only the local header's variable-length parts matter: they decide where the data starts.
    Cursor local(bytes, size, local_offset, where + " local header");
    if (local_offset > size || local.U32() != kLocalHeaderSig) {
      FailAbout(where, "has no local header at byte " + std::to_string(local_offset));
    }
    local.Take(22);  // versions, flags, method, time, date, crc, sizes
    const uint16_t local_name_len = local.U16();
    const uint16_t local_extra_len = local.U16();
    local.Take(local_name_len);
    local.Take(local_extra_len);
    const uint64_t data_offset = local.pos();
    if (uncompressed > size - data_offset) {
      FailAbout(where, "data (" + std::to_string(uncompressed) + " bytes at " +
                           std::to_string(data_offset) + ") runs past the end of the file (" +
                           std::to_string(size) + " bytes)");
    }
    if (!entries.emplace(name, ZipEntry{data_offset, uncompressed}).second) {
      FailAbout(where, "appears twice in the archive");
    }
  }
  return entries;
}

// torch.save puts everything under one folder named after the file it first wrote to.
std::string FindArchivePrefix(const std::string& path,
                              const std::unordered_map<std::string, ZipEntry>& entries) {
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

// ---------------------------------------------------------------------------------------------
// Restricted unpickler. Values live in one arena and refer to each other by index, so a hostile
// pickle can build cycles or deep nesting without recursion or leaks.

using Ref = uint32_t;

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

struct Value {
  Kind kind = Kind::kNone;
  int64_t integer = 0;        // kBool, kInt; kStorage: element count
  std::string text;           // kString; kGlobal: "module.name"; kStorage: storage key
  DType dtype = DType::kF32;  // kStorage
  // kTuple, kList: elements. kDict: key, value, key, value, ... kTensor: the arguments of
  // _rebuild_tensor_v2, checked once the tensor's name is known.
  std::vector<Ref> items;
};

constexpr std::string_view kOrderedDict = "collections.OrderedDict";
constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";

std::optional<DType> StorageDType(std::string_view global) {
  if (global == "torch.FloatStorage") return DType::kF32;
  if (global == "torch.HalfStorage") return DType::kF16;
  if (global == "torch.BFloat16Storage") return DType::kBF16;
  return std::nullopt;
}

class Unpickler {
 public:
  Unpickler(std::string where, const uint8_t* data, size_t size)
      : where_(std::move(where)), in_(data, size, 0, where_) {}

  const Value& at(Ref r) const { return values_[r]; }

  // Runs the pickle program; returns the value STOP leaves on the stack.
  Ref Run() {
    for (;;) {
      op_pos_ = in_.pos();
      const uint8_t op = in_.U8();
      if (op == '.') return Pop();  // STOP
      Step(op);
    }
  }

 private:
  [[noreturn]] void Throw(const std::string& what) const {
    Fail(where_, "byte " + std::to_string(op_pos_) + ": " + what);
  }

  Ref New(Value v) {
    values_.push_back(std::move(v));
    return static_cast<Ref>(values_.size() - 1);
  }
  Ref NewInt(int64_t i) { return New({Kind::kInt, i, {}, DType::kF32, {}}); }
  Ref NewContainer(Kind kind, std::vector<Ref> items = {}) {
    return New({kind, 0, {}, DType::kF32, std::move(items)});
  }

  void Push(Ref r) { stack_.push_back(r); }
  Ref Pop() {
    if (stack_.size() <= StackFloor()) Throw("pops an empty stack");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref Top() {
    if (stack_.size() <= StackFloor()) Throw("reads an empty stack");
    return stack_.back();
  }
  size_t StackFloor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Everything pushed since the last MARK, which is removed.
  std::vector<Ref> PopToMark() {
    if (marks_.empty()) Throw("needs a MARK that is not there");
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                           stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Value& Expect(Ref r, Kind kind, const char* opcode) {
    if (values_[r].kind != kind) {
      Throw(std::string(opcode) + " expects a " + KindName(kind) + ", got a " +
            KindName(values_[r].kind));
    }
    return values_[r];
  }

  void Memoize(uint64_t index) { memo_[index] = Top(); }
  Ref Recall(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) Throw("recalls memo entry " + std::to_string(index) + ", never stored");
    return it->second;
  }

  void SetItems(Ref dict, const std::vector<Ref>& pairs) {
    if (pairs.size() % 2 != 0) Throw("SETITEMS has an odd number of keys and values");
    auto& items = Expect(dict, Kind::kDict, "SETITEM").items;
    items.insert(items.end(), pairs.begin(), pairs.end());
  }

  void Global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (full != kOrderedDict && full != kRebuildTensor && !StorageDType(full)) {
      Throw("pickle asks for global " + Quoted(full) + ", which a tensor checkpoint never needs");
    }
    Push(New({Kind::kGlobal, 0, full, DType::kF32, {}}));
  }

  void Reduce() {
    const Ref args = Pop();
    const std::string callable = Expect(Pop(), Kind::kGlobal, "REDUCE").text;
    const std::vector<Ref> arg_items = Expect(args, Kind::kTuple, "REDUCE").items;
    if (callable == kOrderedDict) {
      if (!arg_items.empty()) Throw("OrderedDict() is called with arguments");
      Push(NewContainer(Kind::kDict));
    } else if (callable == kRebuildTensor) {
      Push(NewContainer(Kind::kTensor, arg_items));
    } else {
      Throw("pickle calls " + Quoted(callable) + ", which torch.save never does");
    }
  }

  // torch.save's persistent id for a storage: ('storage', StorageType, key, location, numel).
  void PersistentLoad() {
    const std::vector<Ref> pid = Expect(Pop(), Kind::kTuple, "BINPERSID").items;
    const bool ok = pid.size() == 5 && at(pid[0]).kind == Kind::kString &&
                    at(pid[0]).text == "storage" && at(pid[1]).kind == Kind::kGlobal &&
                    StorageDType(at(pid[1]).text) && at(pid[2]).kind == Kind::kString &&
                    at(pid[4]).kind == Kind::kInt && at(pid[4]).integer >= 0;
    if (!ok) {
      Throw("persistent id is not ('storage', <Float|Half|BFloat16>Storage, key, location, numel)");
    }
    Push(New(
        {Kind::kStorage, at(pid[4]).integer, at(pid[2]).text, *StorageDType(at(pid[1]).text), {}}));
  }

  int64_t ReadLong1() {
    const uint8_t n = in_.U8();
    if (n > 8) Throw("LONG1 integer of " + std::to_string(n) + " bytes is too large");
    uint64_t v = in_.Uint(n);
    // Two's complement: sign-extend from the top byte read.
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }

  std::string ReadLine() {
    std::string s;
    for (char ch; (ch = static_cast<char>(in_.U8())) != '\n';) s += ch;
    return s;
  }

  void Step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t version = in_.U8();
        if (version < 2 || version > 5) {
          Throw("uses pickle protocol " + std::to_string(version) + ", expected 2 to 5");
        }
        break;
      }
      case 0x95:  // FRAME: a size hint only
        in_.U64();
        break;
      case '}':  // EMPTY_DICT
        Push(NewContainer(Kind::kDict));
        break;
      case ']':  // EMPTY_LIST
        Push(NewContainer(Kind::kList));
        break;
      case ')':  // EMPTY_TUPLE
        Push(NewContainer(Kind::kTuple));
        break;
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case 'X':  // BINUNICODE
        Push(New({Kind::kString, 0, in_.String(in_.U32()), DType::kF32, {}}));
        break;
      case 0x8c:  // SHORT_BINUNICODE
        Push(New({Kind::kString, 0, in_.String(in_.U8()), DType::kF32, {}}));
        break;
      case 0x8d:  // BINUNICODE8
        Push(New({Kind::kString, 0, in_.String(in_.U64()), DType::kF32, {}}));
        break;
      case 'J':  // BININT
        Push(NewInt(static_cast<int32_t>(in_.U32())));
        break;
      case 'K':  // BININT1
        Push(NewInt(in_.U8()));
        break;
      case 'M':  // BININT2
        Push(NewInt(in_.U16()));
        break;
      case 0x8a:  // LONG1
        Push(NewInt(ReadLong1()));
        break;
      case 'G':  // BINFLOAT: no float ever matters to a state dict, so its value is not kept
        in_.Take(8);
        Push(New({Kind::kFloat, 0, {}, DType::kF32, {}}));
        break;
      case 'N':  // NONE
        Push(New({Kind::kNone, 0, {}, DType::kF32, {}}));
        break;
      case 0x88:  // NEWTRUE
      case 0x89:  // NEWFALSE
        Push(New({Kind::kBool, op == 0x88, {}, DType::kF32, {}}));
        break;
      case 'q':  // BINPUT
        Memoize(in_.U8());
        break;
      case 'r':  // LONG_BINPUT
        Memoize(in_.U32());
        break;
      case 0x94:  // MEMOIZE
        Memoize(memo_.size());
        break;
      case 'h':  // BINGET
        Push(Recall(in_.U8()));
        break;
      case 'j':  // LONG_BINGET
        Push(Recall(in_.U32()));
        break;
      case 't':  // TUPLE
        Push(NewContainer(Kind::kTuple, PopToMark()));
        break;
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        std::vector<Ref> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = Pop();
        Push(NewContainer(Kind::kTuple, std::move(items)));
        break;
      }
      case 'l':  // LIST
        Push(NewContainer(Kind::kList, PopToMark()));
        break;
      case 'd': {  // DICT
        const std::vector<Ref> pairs = PopToMark();
        const Ref dict = NewContainer(Kind::kDict);
        SetItems(dict, pairs);
        Push(dict);
        break;
      }
      case 'a': {  // APPEND
        const Ref item = Pop();
        Expect(Top(), Kind::kList, "APPEND").items.push_back(item);
        break;
      }
      case 'e': {  // APPENDS
        const std::vector<Ref> items = PopToMark();
        auto& list = Expect(Top(), Kind::kList, "APPENDS").items;
        list.insert(list.end(), items.begin(), items.end());
        break;
      }
      case 's': {  // SETITEM
        const Ref value = Pop();
        const Ref key = Pop();
        SetItems(Top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        const std::vector<Ref> pairs = PopToMark();
        SetItems(Top(), pairs);
        break;
      }
      case 'c': {  // GLOBAL
        const std::string module = ReadLine();
        Global(module, ReadLine());
        break;
      }
      case 'R':  // REDUCE
        Reduce();
        break;
      case 'b':  // BUILD: the state dict's attributes (`_metadata`), which tensors do not need
        Pop();
        Expect(Top(), Kind::kDict, "BUILD");
        break;
      case 'Q':  // BINPERSID
        PersistentLoad();
        break;
      case '0':  // POP
        Pop();
        break;
      case '1':  // POP_MARK
        PopToMark();
        break;
      case '2':  // DUP
        Push(Top());
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        Throw(std::string("pickle opcode ") + hex +
              ", which torch.save of a state dict never writes");
      }
    }
  }

  std::string where_;
  Cursor in_;
  size_t op_pos_ = 0;
  std::vector<Value> values_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

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
  std::unordered_map<std::string, ZipEntry> entries;
  std::string prefix;  // the folder holding data.pkl and data/<storage key>
};

Shape IntTuple(const Unpickler& unpickler, Ref r, const std::string& where, const char* what) {
  const Value& tuple = unpickler.at(r);
  if (tuple.kind != Kind::kTuple) FailAbout(where, std::string(what) + " is not a tuple");
  Shape dims;
  for (Ref d : tuple.items) {
    const Value& v = unpickler.at(d);
    if (v.kind != Kind::kInt || v.integer < 0) {
      FailAbout(where, std::string(what) + " holds something other than a non-negative int");
    }
    dims.push_back(v.integer);
  }
  return dims;
}

// One state dict entry, `_rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata])`, checked against the archive. Returns a view into
// the mapped storage, or into a row-major copy appended to `copies` when the view is strided.
TensorView RebuildTensor(const Unpickler& unpickler, const Value& tensor, const Archive& archive,
                         const std::string& where, std::vector<std::vector<uint8_t>>& copies) {
  const std::vector<Ref>& args = tensor.items;
  if (args.size() != 6 && args.size() != 7) {
    FailAbout(where, "_rebuild_tensor_v2 gets " + std::to_string(args.size()) +
                         " arguments, expected 6 or 7");
  }
  const Value& storage = unpickler.at(args[0]);
  const Value& offset_value = unpickler.at(args[1]);
  if (storage.kind != Kind::kStorage) FailAbout(where, "is not built from a storage");
  if (offset_value.kind != Kind::kInt || offset_value.integer < 0) {
    FailAbout(where, "has a storage offset that is not a non-negative int");
  }
  const int64_t offset = offset_value.integer;
  const Shape shape = IntTuple(unpickler, args[2], where, "size");
  const Shape stride = IntTuple(unpickler, args[3], where, "stride");
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
  if (!IsContiguous(shape, stride)) {
    copies.push_back(CopyStrided(static_cast<const uint8_t*>(view.data), elem, shape, stride));
    view.data = copies.back().data();
  }
  return view;
}

}  // namespace

TorchCheckpointFile::TorchCheckpointFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  Archive archive;
  archive.bytes = file_->data();
  archive.entries = ReadZipEntries(path, file_->data(), file_->size());
  archive.prefix = FindArchivePrefix(path, archive.entries);
  const ZipEntry& pickle = archive.entries.at(archive.prefix + "/data.pkl");

  Unpickler unpickler(path + ": " + archive.prefix + "/data.pkl",
                      archive.bytes + pickle.data_offset, pickle.size);
  const Value& root = unpickler.at(unpickler.Run());
  if (root.kind != Kind::kDict) {
    Fail(path, std::string("the pickle holds a ") + KindName(root.kind) +
                   ", expected a state dict (a dict of tensors)");
  }
  for (size_t i = 0; i + 1 < root.items.size(); i += 2) {
    const Value& key = unpickler.at(root.items[i]);
    const Value& value = unpickler.at(root.items[i + 1]);
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
    tensors_[key.text] = RebuildTensor(unpickler, value, archive, where, copies_);
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
  return it->second;
}

}  // namespace moe
