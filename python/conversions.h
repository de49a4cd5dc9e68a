#pragma once
// Conversions between Python values (numpy arrays, dicts and lists) and the engine's types for
// the `moescope` module (moescope_module.cpp): token id arrays in, recorded tensors and the
// model config out, and JSON both ways (routing policies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"

namespace py = pybind11;

namespace moe::python {

using Rows = std::vector<std::vector<int32_t>>;

// ---- Python <-> JSON ------------------------------------------------------------------------

// A Python value (None, bool, int, float, str, dict, list, tuple, numpy values) as JSON; throws
// Error naming `where` for anything else.
nlohmann::json ToJson(py::handle h, const std::string& where);
// JSON as Python values (None, bool, int, float, str, list, dict).
py::object FromJson(const nlohmann::json& j);

// ---- arrays ---------------------------------------------------------------------------------

// A 1-D [S] or 2-D [B, S] integer array-like as rows; `one_dim` reports which it was.
Rows ToRows(py::handle obj, const std::string& name, bool* one_dim = nullptr);
// One sequence of ids: 1-D, or 2-D with one row.
std::vector<int32_t> ToIds(py::handle obj, const std::string& name);

// Hands the tensor's bytes to numpy without a copy.
py::array ToNumpy(OwnedTensor&& tensor);
py::array_t<float> ToNumpy(const std::vector<float>& v);

// ---- model ----------------------------------------------------------------------------------

// The config's fields (and the parameter counts) as a dict.
py::dict ConfigDict(const ModelConfig& c);

}  // namespace moe::python
