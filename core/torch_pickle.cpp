#include "core/torch_pickle.h"

#include <cstdio>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/byte_cursor.h"
#include "core/error.h"

namespace moe::torch_pickle {

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

namespace {

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
  std::vector<Value> TakeValues() { return std::move(values_); }

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
      case 0x93: {  // STACK_GLOBAL (protocol 4 and 5): module and name as strings on the stack
        const std::string name = Expect(Pop(), Kind::kString, "STACK_GLOBAL").text;
        const std::string module = Expect(Pop(), Kind::kString, "STACK_GLOBAL").text;
        Global(module, name);
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
  ByteCursor in_;
  size_t op_pos_ = 0;
  std::vector<Value> values_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

}  // namespace

Pickle Unpickle(const std::string& where, const uint8_t* data, size_t size) {
  Unpickler unpickler(where, data, size);
  Pickle pickle;
  pickle.root = unpickler.Run();
  pickle.values = unpickler.TakeValues();
  return pickle;
}

}  // namespace moe::torch_pickle
