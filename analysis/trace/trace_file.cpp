#include "analysis/trace/trace_file.h"

#include <algorithm>
#include <cstring>

#include "analysis/common/space_reservation.h"
#include "analysis/trace/attributes_io.h"
#include "analysis/trace/trace_format.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

using h5::Check;
using h5::Handle;

// Rows per chunk so that a chunk holds about 64 KiB before compression: large enough to
// compress well, small enough that re-compressing the partly filled last chunk at every commit
// stays cheap.
hsize_t ChunkRows(size_t row_bytes) {
  const size_t rows = (64 * 1024) / std::max<size_t>(row_bytes, 1);
  return static_cast<hsize_t>(std::clamp<size_t>(rows, 64, 16384));
}

constexpr int kDeflateLevel = 4;

Handle WriterAccess() {
  // SWMR needs the newest file format (superblock v3, extensible-array chunk indexes).
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  // The WriterLock keeps other writers out for the whole run. HDF5's own flock() is dropped and
  // retaken inside H5Fstart_swmr_write, so a reader polling the new file at that moment made the
  // writer fail; readers are kept out until SWMR starts by the superblock's "open for writing"
  // flag instead.
  H5Pset_file_locking(fapl.id(), false, true);
  return fapl;
}

// Fixed-width strings, each padded with NULs to `width` bytes.
std::vector<char> PackStrings(const std::vector<std::string>& strings, size_t width,
                              const std::string& where) {
  std::vector<char> out(strings.size() * width, '\0');
  for (size_t i = 0; i < strings.size(); ++i) {
    if (strings[i].size() > width)
      Fail(where, "string '" + strings[i] + "' is longer than the dataset's " +
                      std::to_string(width) + " bytes");
    std::memcpy(out.data() + i * width, strings[i].data(), strings[i].size());
  }
  return out;
}

size_t LongestString(const std::vector<std::string>& strings) {
  size_t n = 1;
  for (const std::string& s : strings) n = std::max(n, s.size());
  return n;
}

}  // namespace

TraceFile TraceFile::Create(const std::filesystem::path& path, const TraceHeader& h) {
  h5::SilenceErrors();
  TraceFile t;
  t.path_ = path.string();
  CheckReplaceable(path);
  t.lock_ = WriterLock::Acquire(path);
  try {
    t.WriteNewFile(h);
  } catch (...) {
    // Nothing is committed before Create returns: leave no file that looks like a trace.
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    throw;
  }
  return t;
}

// Writes the header and every (empty) dataset of a new trace, then starts SWMR writing.
void TraceFile::WriteNewFile(const TraceHeader& h) {
  const h5::Place root{path_, "/"};
  Handle fapl = WriterAccess();
  file_ = Handle(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()));
  Check(file_.id(), path_, "cannot create the trace file");
  const hid_t f = file_.id();

  WriteNewTraceAttributes(f, h, root);

  const hsize_t L = static_cast<hsize_t>(h.num_layers), K = static_cast<hsize_t>(h.top_k),
                E = static_cast<hsize_t>(h.num_experts), M = h.domains.size();
  auto rows = [&](const char* name, hid_t type, std::vector<hsize_t> row_shape, size_t row_bytes) {
    h5::CreateRows(f, name, type, row_shape, ChunkRows(row_bytes), kDeflateLevel, At(name));
  };
  rows(trace::ds::kTokenId, H5T_STD_I32LE, {}, 4);
  rows(trace::ds::kTokenPosition, H5T_STD_I32LE, {}, 4);
  rows(trace::ds::kTokenDoc, H5T_STD_I32LE, {}, 4);
  rows(trace::ds::kTokenNll, H5T_IEEE_F32LE, {}, 4);
  if (h.record_predictions) rows(trace::ds::kTokenPredicted, H5T_STD_I32LE, {}, 4);
  rows(trace::ds::kDocOffset, H5T_STD_I64LE, {}, 8);
  rows(trace::ds::kDocDomain, H5T_STD_I16LE, {}, 2);
  Handle source_type = h5::FixedStringType(h.source_id_bytes);
  rows(trace::ds::kDocSourceId, source_type.id(), {}, h.source_id_bytes);
  rows(trace::ds::kTopkIds, H5T_STD_I16LE, {L, K}, L * K * 2);
  rows(trace::ds::kTopkWeights, H5T_IEEE_F32LE, {L, K}, L * K * 4);
  if (h.record_shared_gate) rows(trace::ds::kSharedGate, H5T_IEEE_F32LE, {L}, L * 4);
  if (h.record_logits) {
    Handle half = h5::Float16Type();
    rows(trace::ds::kRouterLogits, half.id(), {L, E}, L * E * 2);
    rows(trace::ds::kLogitToken, H5T_STD_I64LE, {}, 8);
  }
  {
    Handle domain_type = h5::FixedStringType(LongestString(h.domains));
    Handle domains =
        h5::CreateFixed(f, trace::ds::kDomains, domain_type.id(), {M}, At(trace::ds::kDomains));
    const std::vector<char> packed =
        PackStrings(h.domains, LongestString(h.domains), At(trace::ds::kDomains).str());
    if (M > 0) h5::WriteAll(domains.id(), domain_type.id(), packed.data(), At(trace::ds::kDomains));
  }
  h5::CreateFixed(f, trace::ds::kLoad, H5T_STD_I64LE, {M + 1, L, E}, At(trace::ds::kLoad));
  h5::CreateFixed(f, trace::ds::kImportance, H5T_IEEE_F64LE, {M + 1, L, E},
                  At(trace::ds::kImportance));

  OpenDatasets();
  // The offsets start with the 0 that opens the first document.
  const int64_t zero = 0;
  h5::AppendRows(ds_.offset.id(), H5T_NATIVE_INT64, 1, &zero, At(trace::ds::kDocOffset));
  std::vector<int64_t> no_load(static_cast<size_t>((M + 1) * L * E), 0);
  std::vector<double> no_importance(no_load.size(), 0.0);
  h5::WriteAll(ds_.load.id(), H5T_NATIVE_INT64, no_load.data(), At(trace::ds::kLoad));
  h5::WriteAll(ds_.importance.id(), H5T_NATIVE_DOUBLE, no_importance.data(),
               At(trace::ds::kImportance));
  Check(H5Fstart_swmr_write(f), path_, "cannot start SWMR writing");
}

TraceFile TraceFile::Reopen(const std::filesystem::path& path) {
  h5::SilenceErrors();
  TraceFile t;
  t.path_ = path.string();
  if (!std::filesystem::exists(path)) Fail(t.path_, "does not exist; nothing to resume");
  CheckReplaceable(path);
  t.lock_ = WriterLock::Acquire(path);
  Handle fapl = WriterAccess();
  // A writer killed during SWMR writing leaves "open for writing" flags in the superblock;
  // h5clear -s clears them the same way.
  hbool_t clear = true;
  Check(H5Pset(fapl.id(), "clear_status_flags", &clear), t.path_,
        "cannot ask HDF5 to clear the file's status flags");
  t.file_ = Handle(Check(H5Fopen(t.path_.c_str(), H5F_ACC_RDWR, fapl.id()), t.path_,
                         "cannot reopen the trace for writing"));
  // A SWMR writer does not keep the superblock's end-of-allocation current, so after a kill the
  // file's last chunks lie past it; h5clear -i makes the same repair.
  Check(H5Fincrement_filesize(t.file_.id(), 0), t.path_, "cannot repair the end of allocation");
  t.OpenDatasets();

  // The committed prefix, from /docs/offset.
  const h5::Place at_offset = t.At(trace::ds::kDocOffset);
  const hsize_t offsets = h5::Dims(t.ds_.offset.id(), at_offset)[0];
  if (offsets == 0) Fail(at_offset.str(), "is empty; the trace is damaged");
  t.documents_ = static_cast<int64_t>(offsets) - 1;
  h5::ReadRows(t.ds_.offset.id(), H5T_NATIVE_INT64, offsets - 1, 1, &t.tokens_, at_offset);

  auto cut = [&](Handle& dataset, const char* name, int64_t rows) {
    const hsize_t have = h5::Dims(dataset.id(), t.At(name))[0];
    if (have < static_cast<hsize_t>(rows))
      Fail(t.At(name).str(), "has " + std::to_string(have) + " rows but " + std::to_string(rows) +
                                 " are committed; the trace is damaged");
    if (have > static_cast<hsize_t>(rows)) h5::SetRows(dataset.id(), rows, t.At(name));
  };
  for (auto [handle, name] :
       {std::pair{&t.ds_.id, trace::ds::kTokenId},
        std::pair{&t.ds_.position, trace::ds::kTokenPosition},
        std::pair{&t.ds_.doc, trace::ds::kTokenDoc}, std::pair{&t.ds_.nll, trace::ds::kTokenNll},
        std::pair{&t.ds_.topk_ids, trace::ds::kTopkIds},
        std::pair{&t.ds_.topk_weights, trace::ds::kTopkWeights}})
    cut(*handle, name, t.tokens_);
  if (t.predictions_) cut(t.ds_.predicted, trace::ds::kTokenPredicted, t.tokens_);
  if (t.shared_gate_) cut(t.ds_.shared_gate, trace::ds::kSharedGate, t.tokens_);
  cut(t.ds_.domain, trace::ds::kDocDomain, t.documents_);
  cut(t.ds_.source_id, trace::ds::kDocSourceId, t.documents_);
  if (t.logits_) {
    // Sampled logit rows are committed when their token is.
    const h5::Place at = t.At(trace::ds::kLogitToken);
    const hsize_t have = h5::Dims(t.ds_.logit_token.id(), at)[0];
    std::vector<int64_t> token(have);
    h5::ReadRows(t.ds_.logit_token.id(), H5T_NATIVE_INT64, 0, have, token.data(), at);
    t.logit_rows_ = std::lower_bound(token.begin(), token.end(), t.tokens_) - token.begin();
    cut(t.ds_.logit_token, trace::ds::kLogitToken, t.logit_rows_);
    cut(t.ds_.router_logits, trace::ds::kRouterLogits, t.logit_rows_);
  }
  Check(H5Fflush(t.file_.id(), H5F_SCOPE_LOCAL), t.path_, "cannot flush");
  Check(H5Fstart_swmr_write(t.file_.id()), t.path_, "cannot start SWMR writing");
  return t;
}

void TraceFile::OpenDatasets() {
  const hid_t f = file_.id();
  ds_ = TraceDatasets::Open(f, path_, h5::Exists(f, trace::ds::kRouterLogits));
  const std::vector<hsize_t> stats = h5::Dims(ds_.load.id(), At(trace::ds::kLoad));
  const std::vector<hsize_t> routing = h5::Dims(ds_.topk_ids.id(), At(trace::ds::kTopkIds));
  if (stats.size() != 3 || routing.size() != 3)
    Fail(path_, "/stats/load or /routing/topk_ids has the wrong rank; the trace is damaged");
  domains_ = static_cast<int>(stats[0]) - 1;
  layers_ = static_cast<int>(routing[1]);
  kmax_ = static_cast<int>(routing[2]);
  experts_ = static_cast<int>(stats[2]);
  source_id_type_ = Handle(H5Dget_type(ds_.source_id.id()));
  source_id_bytes_ = H5Tget_size(source_id_type_.id());
  logits_ = h5::Exists(f, trace::ds::kRouterLogits);
  predictions_ = ds_.predicted.valid();
  shared_gate_ = ds_.shared_gate.valid();
  if (logits_) float16_type_ = h5::Float16Type();
}

void TraceFile::CheckChunk(const TraceChunk& c) const {
  const size_t n = c.id.size(), d = c.doc_tokens.size();
  const size_t routed = n * static_cast<size_t>(layers_) * kmax_;
  const size_t stats = static_cast<size_t>(domains_ + 1) * layers_ * experts_;
  int64_t doc_sum = 0;
  for (int64_t t : c.doc_tokens) doc_sum += t;
  const bool ok =
      c.position.size() == n && c.doc.size() == n && c.nll.size() == n &&
      (c.predicted.empty() || c.predicted.size() == n) && c.topk_ids.size() == routed &&
      c.topk_weights.size() == routed &&
      (!shared_gate_ || c.shared_gate.size() == n * static_cast<size_t>(layers_)) &&
      c.doc_domain.size() == d && c.doc_source_id.size() == d &&
      static_cast<size_t>(doc_sum) == n &&
      c.router_logits.size() == c.logit_token.size() * static_cast<size_t>(layers_) * experts_ &&
      (logits_ || c.logit_token.empty()) && c.load.size() == stats && c.importance.size() == stats;
  if (!ok) Fail(path_, "internal error: a trace chunk's arrays do not agree in size");
}

// An upper bound on the bytes a commit adds: its rows uncompressed, the partly filled last chunk
// of every dataset rewritten elsewhere (chunks hold about 64 KiB), and room for HDF5's metadata.
uint64_t TraceFile::CommitBytes(const TraceChunk& c) const {
  const uint64_t routed = static_cast<uint64_t>(layers_) * kmax_,
                 logits = static_cast<uint64_t>(layers_) * experts_;
  const uint64_t rows =
      c.id.size() * (5 * sizeof(int32_t) + routed * (2 + 4)) +
      c.shared_gate.size() * sizeof(float) + c.doc_tokens.size() * (2 + source_id_bytes_ + 8) +
      c.logit_token.size() * (8 + logits * 2) + (c.load.size() + c.importance.size()) * 8;
  return rows + rows / 64 + 16 * (64u << 10) + (1u << 20);
}

void TraceFile::Commit(const TraceChunk& c) {
  CheckChunk(c);
  h5::ReserveSpace(file_.id(), CommitBytes(c), path_);
  const hsize_t n = c.id.size();
  h5::AppendRows(ds_.id.id(), H5T_NATIVE_INT32, n, c.id.data(), At(trace::ds::kTokenId));
  h5::AppendRows(ds_.position.id(), H5T_NATIVE_INT32, n, c.position.data(),
                 At(trace::ds::kTokenPosition));
  h5::AppendRows(ds_.doc.id(), H5T_NATIVE_INT32, n, c.doc.data(), At(trace::ds::kTokenDoc));
  h5::AppendRows(ds_.nll.id(), H5T_NATIVE_FLOAT, n, c.nll.data(), At(trace::ds::kTokenNll));
  if (predictions_) {
    const std::vector<int32_t> none(c.predicted.empty() ? n : 0, -1);
    h5::AppendRows(ds_.predicted.id(), H5T_NATIVE_INT32, n,
                   c.predicted.empty() ? none.data() : c.predicted.data(),
                   At(trace::ds::kTokenPredicted));
  }
  h5::AppendRows(ds_.topk_ids.id(), H5T_NATIVE_INT16, n, c.topk_ids.data(),
                 At(trace::ds::kTopkIds));
  h5::AppendRows(ds_.topk_weights.id(), H5T_NATIVE_FLOAT, n, c.topk_weights.data(),
                 At(trace::ds::kTopkWeights));
  if (shared_gate_)
    h5::AppendRows(ds_.shared_gate.id(), H5T_NATIVE_FLOAT, n, c.shared_gate.data(),
                   At(trace::ds::kSharedGate));
  if (logits_ && !c.logit_token.empty()) {
    const hsize_t r = c.logit_token.size();
    h5::AppendRows(ds_.logit_token.id(), H5T_NATIVE_INT64, r, c.logit_token.data(),
                   At(trace::ds::kLogitToken));
    h5::AppendRows(ds_.router_logits.id(), float16_type_.id(), r, c.router_logits.data(),
                   At(trace::ds::kRouterLogits));
    logit_rows_ += static_cast<int64_t>(r);
  }
  const hsize_t d = c.doc_tokens.size();
  h5::AppendRows(ds_.domain.id(), H5T_NATIVE_INT16, d, c.doc_domain.data(),
                 At(trace::ds::kDocDomain));
  const std::vector<char> ids =
      PackStrings(c.doc_source_id, source_id_bytes_, At(trace::ds::kDocSourceId).str());
  h5::AppendRows(ds_.source_id.id(), source_id_type_.id(), d, ids.data(),
                 At(trace::ds::kDocSourceId));
  h5::WriteAll(ds_.load.id(), H5T_NATIVE_INT64, c.load.data(), At(trace::ds::kLoad));
  h5::WriteAll(ds_.importance.id(), H5T_NATIVE_DOUBLE, c.importance.data(),
               At(trace::ds::kImportance));
  Check(H5Fflush(file_.id(), H5F_SCOPE_LOCAL), path_, "cannot flush");

  // Only now do the documents count as written.
  std::vector<int64_t> ends;
  int64_t end = tokens_;
  for (int64_t t : c.doc_tokens) ends.push_back(end += t);
  h5::AppendRows(ds_.offset.id(), H5T_NATIVE_INT64, d, ends.data(), At(trace::ds::kDocOffset));
  Check(H5Dflush(ds_.offset.id()), At(trace::ds::kDocOffset).str(), "cannot flush");
  documents_ += static_cast<int64_t>(d);
  tokens_ = end;
}

void TraceFile::MarkComplete() {
  h5::WriteFlag(file_.id(), trace::attr::kComplete, true, {path_, "/"});
  Check(H5Fflush(file_.id(), H5F_SCOPE_LOCAL), path_, "cannot flush");
}

void TraceFile::Close() {
  for (Handle* h :
       {&ds_.id, &ds_.position, &ds_.doc, &ds_.nll, &ds_.predicted, &ds_.offset, &ds_.domain,
        &ds_.source_id, &ds_.topk_ids, &ds_.topk_weights, &ds_.shared_gate, &ds_.router_logits,
        &ds_.logit_token, &ds_.load, &ds_.importance, &source_id_type_, &float16_type_})
    h->Close();
  // Closing the file is where HDF5 writes what is still cached; report it when that fails.
  if (file_.valid()) Check(H5Fclose(file_.release()), path_, "cannot close the trace file");
  lock_.Release();
}

}  // namespace moe
