#pragma once
// The module's functions that act on routing (docs/python.md): expert importance, pruned
// checkpoints and the expert-cache simulation, thin wrappers over analysis/prune and
// analysis/cache returning numpy arrays and dicts of the typed results.
#include <pybind11/pybind11.h>

#include "python/model_handle.h"

namespace moe::python {

// Model.importance, moescope.read_importance, moescope.prune and moescope.cache_sim.
void BindActing(py::module_& m, py::class_<Model>& model);

}  // namespace moe::python
