#include "analysis/trace/trace_reader.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <tuple>

#include "analysis/common/float16.h"
#include "analysis/trace/attributes_io.h"
#include "analysis/trace/trace_format.h"
#include "core/error.h"

namespace moe {

using h5::Check;
using h5::Handle;

TraceReader::TraceReader(const std::filesystem::path& path, bool swmr) {
  info_.path = path.string();
  h5::SilenceErrors();
  Open(swmr);
  ReadHeader();
  OpenDatasets();
  ReadCommitted();
}

void TraceReader::Open(bool swmr) {
  const std::string& p = info_.path;
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) Fail(p, "does not exist");
  if (std::filesystem::is_directory(p, ec)) Fail(p, "is a folder, not a trace file");
  const htri_t is_hdf5 = H5Fis_hdf5(p.c_str());
  if (is_hdf5 == 0) Fail(p, "is not an HDF5 file (no HDF5 signature); not a moescope trace");
  if (is_hdf5 < 0) Check(-1, p, "cannot be read");
  // A SWMR reader retries a metadata read whose checksum fails (a writer may be half-way through
  // it), sleeping 1 ns, 2 ns, 4 ns... between tries; HDF5's default of 100 tries never ends on a
  // damaged file. 24 tries wait up to about 17 ms in all, ample for a live writer.
  Handle swmr_access(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_metadata_read_attempts(swmr_access.id(), 24);
  hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY | (swmr ? H5F_ACC_SWMR_READ : 0u),
                    swmr ? swmr_access.id() : H5P_DEFAULT);
  swmr_ = swmr;
  if (f < 0 && !swmr) {
    // A writer killed while SWMR writing leaves the file flagged as open for writing; HDF5 still
    // lets SWMR readers in, and the committed prefix is consistent.
    const std::string plain = h5::ErrorDetail();
    H5Eclear2(H5E_DEFAULT);
    f = H5Fopen(p.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, swmr_access.id());
    swmr_ = true;
    if (f < 0) {
      H5Eclear2(H5E_DEFAULT);
      Fail(p, "cannot be opened as a trace; it is damaged or truncated (HDF5: " + plain + ")");
    }
  }
  file_ = Handle(Check(f, p, "cannot be opened as a trace; it is damaged or truncated"));
}

void TraceReader::ReadHeader() {
  const hid_t f = file_.id();
  const h5::Place root{info_.path, "/"};
  if (!h5::HasAttribute(f, trace::attr::kFormat))
    Fail(info_.path, "is an HDF5 file but not a moescope trace (no 'format' attribute)");
  const std::string format = h5::ReadStringAttribute(f, trace::attr::kFormat, root);
  if (format != trace::kFormatName)
    Fail(info_.path, "is not a moescope trace (format is '" + format + "', expected '" +
                         std::string(trace::kFormatName) + "')");
  const int64_t version = h5::ReadIntAttribute(f, trace::attr::kFormatVersion, root);
  if (version != trace::kFormatVersion)
    Fail(info_.path,
         "has trace format_version " + std::to_string(version) +
             "; this moescope reads format_version " + std::to_string(trace::kFormatVersion) +
             (version > trace::kFormatVersion ? " (the trace is newer: upgrade moescope)" : ""));
  TraceAttributes& i = info_;
  i.format_version = static_cast<int>(version);
  i.engine_version = h5::ReadStringAttribute(f, trace::attr::kEngineVersion, root);
  i.created = h5::ReadStringAttribute(f, trace::attr::kCreated, root);
  ReadRunAttributes(f, root, i);
  auto integer = [&](const char* name) {
    return static_cast<int>(h5::ReadIntAttribute(f, name, root));
  };
  i.record_logits = integer(trace::attr::kRecordLogits) != 0;
  i.logit_sample_rate = h5::ReadDoubleAttribute(f, trace::attr::kLogitSampleRate, root);
  i.complete = integer(trace::attr::kComplete) != 0;
  // The vocabulary size bounds /tokens/predicted; a config without a usable one leaves it
  // unchecked (the corpus reader already bounded /tokens/id when the trace was written).
  const nlohmann::json config = nlohmann::json::parse(i.model_config, nullptr, false);
  if (config.is_object() && config.contains("vocab_size") &&
      config.at("vocab_size").is_number_integer()) {
    const int64_t v = config.at("vocab_size").get<int64_t>();
    if (v > 0 && v <= INT32_MAX) vocab_size_ = static_cast<int>(v);
  }
  if (i.num_layers < 1 || i.num_experts < 1 || i.top_k < 1 ||
      static_cast<int>(i.score_scale_factor.size()) != i.num_layers)
    Fail(info_.path, "has inconsistent num_layers / num_experts / top_k / score_scale_factor");
}

void TraceReader::OpenDatasets() {
  ds_ = TraceDatasets::Open(file_.id(), info_.path, info_.record_logits);
  const hsize_t L = info_.num_layers, K = info_.top_k, E = info_.num_experts;
  auto expect = [&](const Handle& ds, const char* name, std::vector<hsize_t> tail) {
    std::vector<hsize_t> dims = h5::Dims(ds.id(), At(name));
    const bool ok =
        dims.size() == tail.size() + 1 && std::equal(tail.begin(), tail.end(), dims.begin() + 1);
    if (!ok) Fail(At(name).str(), "does not have the shape the header describes; damaged trace");
    return dims[0];
  };
  expect(ds_.topk_ids, trace::ds::kTopkIds, {L, K});
  expect(ds_.topk_weights, trace::ds::kTopkWeights, {L, K});
  if (info_.record_logits) expect(ds_.router_logits, trace::ds::kRouterLogits, {L, E});
  if (ds_.predicted.valid()) expect(ds_.predicted, trace::ds::kTokenPredicted, {});
  if (ds_.shared_gate.valid()) expect(ds_.shared_gate, trace::ds::kSharedGate, {L});
  const hsize_t domains = expect(ds_.domains, trace::ds::kDomains, {});
  domains_ = h5::ReadStrings(ds_.domains.id(), 0, domains, At(trace::ds::kDomains));
  if (expect(ds_.load, trace::ds::kLoad, {L, E}) != domains + 1 ||
      expect(ds_.importance, trace::ds::kImportance, {L, E}) != domains + 1)
    Fail(info_.path, "/stats do not have one row per domain plus one; damaged trace");
}

void TraceReader::ReadCommitted() {
  // While a writer appends, the offsets are read first and every other dataset refreshed after:
  // the writer flushes token rows before it extends /docs/offset, so the datasets then hold at
  // least the rows the offsets commit.
  const h5::Place at = At(trace::ds::kDocOffset);
  if (swmr_) Check(H5Drefresh(ds_.offset.id()), at.str(), "cannot refresh");
  const hsize_t rows = h5::Dims(ds_.offset.id(), at)[0];
  if (rows == 0) Fail(at.str(), "is empty; damaged trace");
  std::vector<int64_t> offsets(rows);
  h5::ReadRows(ds_.offset.id(), H5T_NATIVE_INT64, 0, rows, offsets.data(), at);
  if (swmr_)
    for (Handle* ds : {&ds_.id, &ds_.position, &ds_.doc, &ds_.nll, &ds_.predicted, &ds_.domain,
                       &ds_.source_id, &ds_.topk_ids, &ds_.topk_weights, &ds_.shared_gate,
                       &ds_.router_logits, &ds_.logit_token, &ds_.load, &ds_.importance})
      if (ds->valid()) Check(H5Drefresh(ds->id()), info_.path, "cannot refresh a dataset");
  if (offsets[0] != 0) Fail(at.str(), "does not start at 0; damaged trace");
  for (size_t d = 1; d < offsets.size(); ++d)
    if (offsets[d] < offsets[d - 1]) Fail(at.str(), "is not ascending; damaged trace");
  const int64_t n = offsets.back(), docs = static_cast<int64_t>(rows) - 1;
  for (auto [ds, name, need] : {std::tuple{&ds_.id, trace::ds::kTokenId, n},
                                std::tuple{&ds_.position, trace::ds::kTokenPosition, n},
                                std::tuple{&ds_.doc, trace::ds::kTokenDoc, n},
                                std::tuple{&ds_.nll, trace::ds::kTokenNll, n},
                                std::tuple{&ds_.topk_ids, trace::ds::kTopkIds, n},
                                std::tuple{&ds_.topk_weights, trace::ds::kTopkWeights, n},
                                std::tuple{&ds_.domain, trace::ds::kDocDomain, docs},
                                std::tuple{&ds_.source_id, trace::ds::kDocSourceId, docs},
                                std::tuple{&ds_.predicted, trace::ds::kTokenPredicted, n},
                                std::tuple{&ds_.shared_gate, trace::ds::kSharedGate, n}}) {
    if (!ds->valid()) continue;  // an optional dataset the trace does not have
    const hsize_t have = h5::Dims(ds->id(), At(name))[0];
    if (have < static_cast<hsize_t>(need))
      Fail(At(name).str(), "has " + std::to_string(have) + " rows, fewer than the " +
                               std::to_string(need) + " committed; damaged trace");
  }
  std::vector<int16_t> domain(static_cast<size_t>(docs));
  h5::ReadRows(ds_.domain.id(), H5T_NATIVE_INT16, 0, docs, domain.data(),
               At(trace::ds::kDocDomain));
  for (int16_t m : domain)
    if (m < 0 || m >= static_cast<int16_t>(domains_.size()))
      Fail(At(trace::ds::kDocDomain).str(),
           "holds domain " + std::to_string(m) + " outside /domains; damaged trace");
  std::vector<int64_t> logit_token;
  if (info_.record_logits) {
    const h5::Place at_logits = At(trace::ds::kLogitToken);
    const hsize_t r = h5::Dims(ds_.logit_token.id(), at_logits)[0];
    logit_token.resize(r);
    h5::ReadRows(ds_.logit_token.id(), H5T_NATIVE_INT64, 0, r, logit_token.data(), at_logits);
    // Rows of an uncommitted chunk may follow the committed ones.
    logit_token.resize(std::lower_bound(logit_token.begin(), logit_token.end(), n) -
                       logit_token.begin());
    if (!std::is_sorted(logit_token.begin(), logit_token.end()) ||
        (!logit_token.empty() && logit_token.front() < 0) ||
        h5::Dims(ds_.router_logits.id(), At(trace::ds::kRouterLogits))[0] < logit_token.size())
      Fail(at_logits.str(), "does not match /routing/router_logits; damaged trace");
  }
  offsets_ = std::move(offsets);
  doc_domain_ = std::move(domain);
  logit_token_ = std::move(logit_token);
}

void TraceReader::Refresh() {
  if (!swmr_) return;  // a file nobody is writing does not change
  // `complete` first: once it reads 1, the offsets read after it are final.
  Handle root(Check(H5Gopen2(file_.id(), "/", H5P_DEFAULT), info_.path, "cannot open /"));
  Check(H5Orefresh(root.id()), info_.path, "cannot refresh the root attributes");
  info_.complete = h5::ReadIntAttribute(root.id(), trace::attr::kComplete, {info_.path, "/"}) != 0;
  ReadCommitted();
}

void TraceReader::CheckRange(const char* what, int64_t begin, int64_t count, int64_t size) const {
  if (begin < 0 || count < 0 || begin + count > size)
    Fail(info_.path, std::string(what) + " " + std::to_string(begin) + ".." +
                         std::to_string(begin + count) + " are outside the committed 0.." +
                         std::to_string(size));
}

TraceDocument TraceReader::Document(int64_t d) const {
  CheckRange("documents", d, 1, num_documents());
  return {d, offsets_[d], offsets_[d + 1], doc_domain_[d]};
}

std::vector<std::string> TraceReader::SourceIds(int64_t begin, int64_t count) const {
  CheckRange("documents", begin, count, num_documents());
  return h5::ReadStrings(ds_.source_id.id(), begin, count, At(trace::ds::kDocSourceId));
}

TokenRows TraceReader::ReadTokens(int64_t begin, int64_t count) const {
  CheckRange("token rows", begin, count, num_tokens());
  TokenRows r;
  r.begin = begin;
  const size_t n = static_cast<size_t>(count);
  r.id.resize(n);
  r.position.resize(n);
  r.doc.resize(n);
  r.nll.resize(n);
  h5::ReadRows(ds_.id.id(), H5T_NATIVE_INT32, begin, count, r.id.data(), At(trace::ds::kTokenId));
  h5::ReadRows(ds_.position.id(), H5T_NATIVE_INT32, begin, count, r.position.data(),
               At(trace::ds::kTokenPosition));
  h5::ReadRows(ds_.doc.id(), H5T_NATIVE_INT32, begin, count, r.doc.data(),
               At(trace::ds::kTokenDoc));
  h5::ReadRows(ds_.nll.id(), H5T_NATIVE_FLOAT, begin, count, r.nll.data(),
               At(trace::ds::kTokenNll));
  if (has_predictions()) {
    r.predicted.resize(n);
    h5::ReadRows(ds_.predicted.id(), H5T_NATIVE_INT32, begin, count, r.predicted.data(),
                 At(trace::ds::kTokenPredicted));
    // Consumers index token id tables with these: -1 (no prediction) or an id of the vocabulary.
    for (size_t i = 0; i < n; ++i) {
      const int32_t p = r.predicted[i];
      if (p < -1 || (vocab_size_ > 0 && p >= vocab_size_))
        Fail(At(trace::ds::kTokenPredicted).str(),
             "token row " + std::to_string(begin + static_cast<int64_t>(i)) + ": predicted id " +
                 std::to_string(p) + " is outside -1.." +
                 (vocab_size_ > 0 ? std::to_string(vocab_size_ - 1) + " (vocab_size)"
                                  : std::string("(no vocab_size: at least -1)")) +
                 "; damaged trace");
    }
  }
  CheckTokenDocs(begin, r.doc);
  return r;
}

std::vector<int32_t> TraceReader::ReadTokenDocs(int64_t begin, int64_t count) const {
  CheckRange("token rows", begin, count, num_tokens());
  std::vector<int32_t> doc(static_cast<size_t>(count));
  h5::ReadRows(ds_.doc.id(), H5T_NATIVE_INT32, begin, count, doc.data(), At(trace::ds::kTokenDoc));
  CheckTokenDocs(begin, doc);
  return doc;
}

void TraceReader::CheckTokenDocs(int64_t begin, const std::vector<int32_t>& doc) const {
  // /docs/offset is what commits documents; /tokens/doc must agree with it row for row, since
  // consumers index per-document tables with it.
  if (doc.empty()) return;
  int64_t d = std::upper_bound(offsets_.begin(), offsets_.end(), begin) - offsets_.begin() - 1;
  for (size_t i = 0; i < doc.size(); ++i) {
    const int64_t t = begin + static_cast<int64_t>(i);
    while (offsets_[static_cast<size_t>(d) + 1] <= t) ++d;
    if (doc[i] != d)
      Fail(At(trace::ds::kTokenDoc).str(),
           "token row " + std::to_string(t) + " says document " + std::to_string(doc[i]) +
               " but /docs/offset puts it in document " + std::to_string(d) + "; damaged trace");
  }
}

RoutingRows TraceReader::ReadRouting(int64_t begin, int64_t count) const {
  CheckRange("token rows", begin, count, num_tokens());
  RoutingRows r;
  r.begin = begin;
  r.count = count;
  r.layers = info_.num_layers;
  r.kmax = info_.top_k;
  const size_t n = static_cast<size_t>(count) * r.layers * r.kmax;
  r.ids.resize(n);
  r.weights.resize(n);
  h5::ReadRows(ds_.topk_ids.id(), H5T_NATIVE_INT16, begin, count, r.ids.data(),
               At(trace::ds::kTopkIds));
  h5::ReadRows(ds_.topk_weights.id(), H5T_NATIVE_FLOAT, begin, count, r.weights.data(),
               At(trace::ds::kTopkWeights));
  // Every consumer indexes per-expert tables with these ids: check them against the file's own
  // num_experts once, here (-1 marks an empty slot of a row with fewer selections).
  const int E = info_.num_experts;
  for (size_t i = 0; i < n; ++i)
    if (r.ids[i] < -1 || r.ids[i] >= E) {
      const size_t per_token = static_cast<size_t>(r.layers) * r.kmax;
      Fail(At(trace::ds::kTopkIds).str(),
           "token row " + std::to_string(begin + static_cast<int64_t>(i / per_token)) + ", layer " +
               std::to_string((i % per_token) / r.kmax) + ": expert id " +
               std::to_string(r.ids[i]) + " is outside 0.." + std::to_string(E - 1) +
               " (num_experts); damaged trace");
    }
  if (ds_.shared_gate.valid()) {
    r.shared_gate.resize(static_cast<size_t>(count) * r.layers);
    h5::ReadRows(ds_.shared_gate.id(), H5T_NATIVE_FLOAT, begin, count, r.shared_gate.data(),
                 At(trace::ds::kSharedGate));
    for (size_t i = 0; i < r.shared_gate.size(); ++i)
      if (!(r.shared_gate[i] >= 0.0f && r.shared_gate[i] <= 1.0f))  // NaN fails too
        Fail(At(trace::ds::kSharedGate).str(),
             "token row " + std::to_string(begin + static_cast<int64_t>(i / r.layers)) +
                 ", layer " + std::to_string(i % r.layers) + ": gate " +
                 std::to_string(r.shared_gate[i]) + " is outside [0, 1]; damaged trace");
  }
  return r;
}

LogitRows TraceReader::ReadRouterLogits(int64_t begin, int64_t count) const {
  if (!info_.record_logits)
    Fail(info_.path, "has no router logits (traced without --record-logits)");
  CheckRange("logit rows", begin, count, num_logit_rows());
  LogitRows r;
  r.begin = begin;
  r.count = count;
  r.layers = info_.num_layers;
  r.experts = info_.num_experts;
  r.token.assign(logit_token_.begin() + begin, logit_token_.begin() + begin + count);
  std::vector<uint16_t> half(static_cast<size_t>(count) * r.layers * r.experts);
  Handle type = h5::Float16Type();
  h5::ReadRows(ds_.router_logits.id(), type.id(), begin, count, half.data(),
               At(trace::ds::kRouterLogits));
  r.logits.resize(half.size());
  std::transform(half.begin(), half.end(), r.logits.begin(), HalfToFloat);
  return r;
}

ExpertStats TraceReader::ReadStats() const {
  ExpertStats s(static_cast<int>(domains_.size()), info_.num_layers, info_.num_experts);
  h5::ReadRows(ds_.load.id(), H5T_NATIVE_INT64, 0, domains_.size() + 1, s.load().data(),
               At(trace::ds::kLoad));
  h5::ReadRows(ds_.importance.id(), H5T_NATIVE_DOUBLE, 0, domains_.size() + 1,
               s.importance().data(), At(trace::ds::kImportance));
  return s;
}

}  // namespace moe
