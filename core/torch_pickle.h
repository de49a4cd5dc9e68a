#pragma once
// The restricted unpickler of torch.save checkpoints: runs the `data.pkl` program understanding
// only what torch.save emits for a state dict of tensors (OrderedDict,
// torch._utils._rebuild_tensor_v2, Float/Half/BFloat16 storages as persistent ids) and refuses
// every other global and opcode. No code runs; tensors are described, not built. The opcodes are
// those torch.save writes with pickle protocols 2 to 5 (4 and 5 add FRAME, SHORT_BINUNICODE,
// MEMOIZE and STACK_GLOBAL); globals are checked the same way whichever opcode names them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe::torch_pickle {

using Ref = uint32_t;  // index of a value in Pickle::values

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

const char* KindName(Kind k);

struct Value {
  Kind kind = Kind::kNone;
  int64_t integer = 0;        // kBool, kInt; kStorage: element count
  std::string text;           // kString; kGlobal: "module.name"; kStorage: storage key
  DType dtype = DType::kF32;  // kStorage
  // kTuple, kList: elements. kDict: key, value, key, value, ... kTensor: the arguments of
  // _rebuild_tensor_v2, checked once the tensor's name is known.
  std::vector<Ref> items;
};

// Everything the program built. Values live in one arena and refer to each other by index, so a
// hostile pickle can build cycles or deep nesting without recursion or leaks.
struct Pickle {
  std::vector<Value> values;
  Ref root = 0;  // the value STOP left on the stack

  const Value& at(Ref r) const { return values[r]; }
};

// Runs the program in data[0, size). Throws Error "<where>: byte N: ..." for anything torch.save
// of a state dict never writes, and "<where> runs past the end" for a truncated program.
Pickle Unpickle(const std::string& where, const uint8_t* data, size_t size);

}  // namespace moe::torch_pickle
