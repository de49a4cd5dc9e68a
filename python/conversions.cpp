#include "python/conversions.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "core/error.h"
#include "core/model_summary.h"

namespace moe::python {

using nlohmann::json;

namespace {

py::dtype NumpyType(const OwnedTensor& t) {
  switch (t.dtype) {
    case DType::kF32:
      return py::dtype::of<float>();
    case DType::kI32:
      return py::dtype::of<int32_t>();
    case DType::kI64:
      return py::dtype::of<int64_t>();
    case DType::kI16:
      return py::dtype::of<int16_t>();
    case DType::kU8:
      return py::dtype::of<uint8_t>();
    case DType::kF16:
      return py::dtype("float16");
    case DType::kBF16:
      break;
  }
  Fail(t.name, std::string(DTypeName(t.dtype)) + " tensors have no numpy type");
}

const char* RopeScalingName(RopeScaling r) {
  switch (r) {
    case RopeScaling::kLinear:
      return "linear";
    case RopeScaling::kDynamic:
      return "dynamic";
    default:
      return "none";
  }
}

}  // namespace

// ---- Python <-> JSON ------------------------------------------------------------------------

json ToJson(py::handle h, const std::string& where) {
  if (h.is_none()) return nullptr;
  if (PyBool_Check(h.ptr())) return h.cast<bool>();
  if (py::isinstance<py::str>(h)) return h.cast<std::string>();
  if (py::hasattr(h, "tolist")) return ToJson(h.attr("tolist")(), where);  // numpy values
  if (PyIndex_Check(h.ptr())) {
    py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(h.ptr()));
    if (!i) throw py::error_already_set();
    return i.cast<int64_t>();
  }
  if (PyFloat_Check(h.ptr())) return h.cast<double>();
  if (py::isinstance<py::dict>(h)) {
    json j = json::object();
    for (auto item : py::reinterpret_borrow<py::dict>(h)) {
      const std::string key = py::isinstance<py::str>(item.first)
                                  ? item.first.cast<std::string>()
                                  : py::str(item.first).cast<std::string>();
      j[key] = ToJson(item.second, where);
    }
    return j;
  }
  if (py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    json j = json::array();
    for (py::handle item : py::reinterpret_borrow<py::sequence>(h))
      j.push_back(ToJson(item, where));
    return j;
  }
  if (py::hasattr(h, "__float__")) return h.cast<double>();
  Fail(where, "cannot express a Python " +
                  py::str(h.get_type().attr("__name__")).cast<std::string>() + " in JSON");
}

py::object FromJson(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case json::value_t::number_float:
      return py::float_(j.get<double>());
    case json::value_t::string:
      return py::str(j.get<std::string>());
    case json::value_t::array: {
      py::list l;
      for (const json& v : j) l.append(FromJson(v));
      return l;
    }
    case json::value_t::object: {
      py::dict d;
      for (const auto& item : j.items()) d[py::str(item.key())] = FromJson(item.value());
      return d;
    }
    default:
      return py::none();
  }
}

// ---- arrays ---------------------------------------------------------------------------------

Rows ToRows(py::handle obj, const std::string& name, bool* one_dim) {
  py::array a = py::module_::import("numpy").attr("asarray")(obj);
  if (a.ndim() != 1 && a.ndim() != 2)
    Fail(name, "must be 1-D [S] or 2-D [B, S], got " + std::to_string(a.ndim()) + " dimensions");
  const char kind = a.dtype().kind();
  if (a.size() > 0 && kind != 'i' && kind != 'u' && kind != 'b')
    Fail(name, "must hold integers, got dtype " + py::str(a.dtype()).cast<std::string>());
  const auto values = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!values) throw py::error_already_set();
  const int64_t rows = a.ndim() == 1 ? 1 : a.shape(0);
  const int64_t cols = a.ndim() == 1 ? a.shape(0) : a.shape(1);
  if (one_dim) *one_dim = a.ndim() == 1;
  const int64_t* p = values.data();
  Rows out(rows, std::vector<int32_t>(cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t v = p[r * cols + c];
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        Fail(name + "[" + std::to_string(r) + "][" + std::to_string(c) + "]",
             std::to_string(v) + " does not fit in 32 bits");
      out[r][c] = static_cast<int32_t>(v);
    }
  return out;
}

std::vector<int32_t> ToIds(py::handle obj, const std::string& name) {
  bool one_dim = true;
  Rows rows = ToRows(obj, name, &one_dim);
  if (!one_dim && rows.size() != 1)
    Fail(name, "must be one sequence (1-D, or 2-D with one row), got " +
                   std::to_string(rows.size()) + " rows");
  return rows.empty() ? std::vector<int32_t>{} : std::move(rows[0]);
}

py::array ToNumpy(OwnedTensor&& tensor) {
  auto* t = new OwnedTensor(std::move(tensor));
  py::capsule owner(t, [](void* p) { delete static_cast<OwnedTensor*>(p); });
  const py::dtype dtype = NumpyType(*t);
  const std::vector<py::ssize_t> shape(t->shape.begin(), t->shape.end());
  return py::array(dtype, shape, t->bytes.data(), owner);
}

py::array_t<float> ToNumpy(const std::vector<float>& v) {
  py::array_t<float> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// ---- model ----------------------------------------------------------------------------------

py::dict ConfigDict(const ModelConfig& c) {
  py::dict d;
  d["model_type"] = c.model_type;
  d["architecture"] = ArchitectureName(c.architecture);
  d["vocab_size"] = c.vocab_size;
  d["hidden_size"] = c.hidden_size;
  d["intermediate_size"] = c.intermediate_size;
  d["num_hidden_layers"] = c.num_hidden_layers;
  d["num_attention_heads"] = c.num_attention_heads;
  d["num_key_value_heads"] = c.num_key_value_heads;
  d["head_dim"] = c.head_dim();
  d["max_position_embeddings"] = c.max_position_embeddings;
  d["context_length"] = c.context_length();
  d["rms_norm_eps"] = c.rms_norm_eps;
  d["rope_theta"] = c.rope_theta;
  d["rope_scaling"] = RopeScalingName(c.rope_scaling);
  d["rope_scaling_factor"] = c.rope_scaling_factor;
  d["attention_bias"] = c.qkv_bias && c.o_bias;  // LLaMA's one key for all four biases
  d["qkv_bias"] = c.qkv_bias;
  d["o_bias"] = c.o_bias;
  d["family"] = c.model_type;
  d["router"] = RouterRecipeText(c);
  d["attention"] = AttentionText(c);
  d["moe_layers"] = c.moe_layer;
  d["shared_expert_width"] = c.shared_expert_width;
  d["tie_word_embeddings"] = c.tie_word_embeddings;
  d["bos_token_id"] = c.bos_token_id;
  d["eos_token_id"] = c.eos_token_id;
  d["pad_token_id"] = c.has_pad_token ? py::object(py::int_(c.pad_token_id)) : py::none();
  d["num_labels"] = c.num_labels;
  d["labels"] = c.labels;
  d["is_moe"] = c.is_moe;
  d["num_experts"] = c.num_experts;
  d["num_selects"] = c.num_selects;
  d["size_experts"] = c.size_experts;
  d["gate_network"] = c.gate_network == GateNetwork::kMlp ? "mlp" : "linear";
  d["gate_use_softmax"] = c.gate_use_softmax;
  d["gate_add_noise"] = c.gate_add_noise;
  d["multiply_gate_scores"] = c.multiply_gate_scores;
  d["score_scale_factor"] = c.score_scale_factor;
  d["gate_type"] = c.gate_type;
  d["calculator_type"] = c.calculator_type;
  d["total_parameters"] = c.TotalParameters();
  d["activated_parameters"] = c.ActivatedParameters();
  return d;
}

}  // namespace moe::python
