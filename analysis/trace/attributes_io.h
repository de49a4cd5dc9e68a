#pragma once
// The run part of TraceAttributes (model, checkpoint, tokenizer, policy, corpus, windows, routing
// shape) as root attributes of an HDF5 file: written and read the same way by traces
// (trace_file.h, trace_reader.h) and ablation results files (ablation/ablation_file.h), so both
// name a run alike and are checked alike before a resume.
#include <hdf5.h>

#include "analysis/common/hdf5_util.h"
#include "analysis/trace/trace_attributes.h"

namespace moe {

void WriteRunAttributes(hid_t file, const TraceAttributes& run, const h5::Place& root);
// Every root attribute of a new trace (format, version, engine, creation time, the run, the
// logit settings), `complete` = 0 first so that an interrupted file always says it is
// incomplete. Shared by the trace writer and `moescope merge`.
void WriteNewTraceAttributes(hid_t file, const TraceAttributes& run, const h5::Place& root);
// Fills the run fields of `out`; missing attributes are errors naming the file and attribute.
void ReadRunAttributes(hid_t file, const h5::Place& root, TraceAttributes& out);

}  // namespace moe
