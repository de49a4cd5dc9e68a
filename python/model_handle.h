#pragma once
// The Python module's Model (a loaded model folder and the lock that serializes engine calls on
// it), shared by the files that bind its methods.
#include <pybind11/pybind11.h>

#include <mutex>

#include "analysis/corpus/corpus.h"
#include "core/model_loader.h"

namespace py = pybind11;

namespace moe::python {

struct Model {
  explicit Model(LoadedModel m) : loaded(std::move(m)) {}
  LoadedModel loaded;
  std::mutex run;

  const ModelConfig& config() const { return loaded.config(); }
};

// Documents of token ids (one list each) as a corpus of one domain "documents".
Corpus DocumentsCorpus(const Model& m, const py::list& documents);

}  // namespace moe::python
