#include "analysis/trace/trace_merge.h"

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis/common/hdf5_util.h"
#include "analysis/common/progress_bar.h"
#include "analysis/common/sha256.h"
#include "analysis/common/writer_lock.h"
#include "analysis/trace/attributes_io.h"
#include "analysis/trace/trace_format.h"
#include "analysis/trace/trace_reader.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

using h5::Check;
using h5::Handle;
using nlohmann::json;

// Token rows read (and re-based) at a time.
constexpr int64_t kBlockTokens = int64_t{1} << 20;
// The same chunking as the writer's token-axis datasets (about 64 KiB).
constexpr hsize_t kChunkRows4 = 16384, kChunkRows8 = 8192;
constexpr int kDeflateLevel = 4;

bool SameJson(const std::string& a, const std::string& b) {
  try {
    return json::parse(a) == json::parse(b);
  } catch (const json::exception&) {
    return a == b;
  }
}

// Throws, naming `other`, when it was not made by the same model, policy and settings as `first`.
void CheckSameRun(const TraceAttributes& first, const TraceReader& other_reader) {
  const TraceAttributes& o = other_reader.info();
  auto differs = [&](const std::string& what, const std::string& a, const std::string& b) {
    Fail(o.path, "cannot be merged with " + first.path + ": its " + what + " differs (" + b +
                     " here, " + a + " there)");
  };
  auto short_text = [](const std::string& s) {
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
  };
  if (!SameJson(first.model_config, o.model_config))
    differs("model config", short_text(first.model_config), short_text(o.model_config));
  if (!SameJson(first.checkpoint_sha256, o.checkpoint_sha256))
    differs("model checkpoint (sha256)", short_text(first.checkpoint_sha256),
            short_text(o.checkpoint_sha256));
  if (first.tokenizer_sha256 != o.tokenizer_sha256)
    differs("tokenizer (sha256)", first.tokenizer_sha256, o.tokenizer_sha256);
  if (!SameJson(first.routing_policy, o.routing_policy))
    differs("routing policy", short_text(first.routing_policy), short_text(o.routing_policy));
  if (!SameJson(first.windowing, o.windowing)) differs("windowing", first.windowing, o.windowing);
  if (first.record_logits != o.record_logits || first.logit_sample_rate != o.logit_sample_rate)
    differs("--record-logits / --logit-sample-rate",
            std::to_string(first.record_logits) + " / " + std::to_string(first.logit_sample_rate),
            std::to_string(o.record_logits) + " / " + std::to_string(o.logit_sample_rate));
  if (first.num_layers != o.num_layers || first.num_experts != o.num_experts ||
      first.top_k != o.top_k || first.score_scale_factor != o.score_scale_factor ||
      first.moe_layers != o.moe_layers || first.model_family != o.model_family)
    differs("routing shape (family, layers, experts, top_k, scale factors)",
            first.model_family + " " + std::to_string(first.num_layers) + "x" +
                std::to_string(first.num_experts) + " k" + std::to_string(first.top_k),
            o.model_family + " " + std::to_string(o.num_layers) + "x" +
                std::to_string(o.num_experts) + " k" + std::to_string(o.top_k));
}

// How the merged file names a shard: relative to the merged file's folder when the shard lies
// under it (HDF5 looks for a relative VDS source next to the file that maps it, so the folder can
// move as a whole), else absolute.
std::string SourceName(const std::filesystem::path& shard, const std::filesystem::path& output) {
  const auto abs_shard = std::filesystem::absolute(shard).lexically_normal();
  const auto dir = std::filesystem::absolute(output).lexically_normal().parent_path();
  const auto rel = abs_shard.lexically_relative(dir);
  if (!rel.empty() && *rel.begin() != "..") return rel.string();
  return abs_shard.string();
}

struct Source {
  std::string file;
  hsize_t rows = 0;
};

// A virtual dataset [sum rows, row_shape...] of `type` concatenating `name` of every source.
void CreateVirtual(hid_t f, const char* name, hid_t type, const std::vector<hsize_t>& row_shape,
                   const std::vector<Source>& sources, const h5::Place& where) {
  std::vector<hsize_t> dims{0};
  for (const Source& s : sources) dims[0] += s.rows;
  dims.insert(dims.end(), row_shape.begin(), row_shape.end());
  const int rank = static_cast<int>(dims.size());
  Handle space(
      Check(H5Screate_simple(rank, dims.data(), nullptr), where.str(), "cannot make a dataspace"));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t start = 0;
  for (const Source& s : sources) {
    if (s.rows == 0) continue;
    std::vector<hsize_t> offset(dims.size(), 0), count = dims;
    offset[0] = start;
    count[0] = s.rows;
    Check(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, offset.data(), nullptr, count.data(),
                              nullptr),
          where.str(), "cannot select rows");
    Handle source_space(Check(H5Screate_simple(rank, count.data(), nullptr), where.str(),
                              "cannot make a dataspace"));
    Check(H5Pset_virtual(dcpl.id(), space.id(), s.file.c_str(), name, source_space.id()),
          where.str(), "cannot map the rows of " + s.file);
    start += s.rows;
  }
  Check(H5Sselect_all(space.id()), where.str(), "cannot select");
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle ds(Check(H5Dcreate2(f, name, type, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
                  where.str(), "cannot create the virtual dataset"));
}

std::vector<char> PackStrings(const std::vector<std::string>& strings, size_t width) {
  std::vector<char> out(strings.size() * width, '\0');
  for (size_t i = 0; i < strings.size(); ++i)
    std::copy(strings[i].begin(), strings[i].end(),
              out.begin() + static_cast<ptrdiff_t>(i * width));
  return out;
}

// The `corpus` attribute of the merged trace when the caller gives none: the shards' files and
// skip lists in order, their counts summed.
std::string MergedCorpus(const std::vector<std::unique_ptr<TraceReader>>& readers,
                         const std::vector<std::filesystem::path>& shards) {
  json files = json::array(), skipped = json::array(), merged_from = json::array();
  int64_t documents = 0, tokens = 0, skipped_count = 0;
  json first;
  for (size_t i = 0; i < readers.size(); ++i) {
    json c = json::parse(readers[i]->info().corpus, nullptr, false);
    if (!c.is_object()) c = json::object();
    if (i == 0) first = c;
    for (const json& f : c.value("files", json::array())) files.push_back(f);
    for (const json& s : c.value("skipped", json::array()))
      if (skipped.size() < 100) skipped.push_back(s);
    skipped_count += c.value("skipped_count", int64_t{0});
    documents += readers[i]->num_documents();
    tokens += readers[i]->num_tokens();
    merged_from.push_back(shards[i].string());
  }
  json out = {{"files", files},
              {"default_domain", first.value("default_domain", std::string())},
              {"only_domains", first.value("only_domains", json::array())},
              {"max_documents_per_domain", first.value("max_documents_per_domain", int64_t{0})},
              {"max_tokens_per_document", first.value("max_tokens_per_document", int64_t{0})},
              {"documents", documents},
              {"tokens", tokens},
              {"skipped_count", skipped_count},
              {"skipped", skipped},
              {"merged_from", merged_from}};
  return out.dump();
}

}  // namespace

MergeSummary MergeTraces(const std::vector<std::filesystem::path>& shards,
                         const std::filesystem::path& output, const MergeOptions& options) {
  h5::SilenceErrors();
  if (shards.empty()) Fail("merge", "needs at least one shard");
  const std::string out = output.string();
  std::vector<std::unique_ptr<TraceReader>> readers;
  std::error_code ec;
  for (const std::filesystem::path& s : shards) {
    if (std::filesystem::exists(output, ec) && std::filesystem::exists(s, ec) &&
        std::filesystem::equivalent(output, s, ec))
      Fail(out, "is one of the shards; the merged trace needs a path of its own");
    readers.push_back(std::make_unique<TraceReader>(s));
    const TraceReader& r = *readers.back();
    if (!r.info().complete)
      Fail(s.string(), "is incomplete (complete = 0, " + std::to_string(r.num_documents()) +
                           " documents committed); finish it with `moescope trace --resume` "
                           "before merging");
    if (readers.size() > 1) CheckSameRun(readers.front()->info(), r);
  }
  const TraceAttributes& first = readers.front()->info();
  const int L = first.num_layers, K = first.top_k, E = first.num_experts;
  bool predictions = true;
  for (const auto& r : readers) predictions = predictions && r->has_predictions();
  // Shards of one model either all record the shared expert's gate or (older writers) none do.
  bool shared_gate = true;
  for (const auto& r : readers) shared_gate = shared_gate && r->has_shared_gate();

  // Domains: the caller's, else in order of first appearance over the shards; each shard's
  // domain indices map into them.
  std::vector<std::string> domains = options.domains.value_or(std::vector<std::string>{});
  std::vector<std::vector<int16_t>> domain_map;
  for (size_t i = 0; i < readers.size(); ++i) {
    std::vector<int16_t> map;
    for (const std::string& d : readers[i]->domains()) {
      auto it = std::find(domains.begin(), domains.end(), d);
      if (it == domains.end()) {
        if (options.domains)
          Fail(shards[i].string(), "holds domain '" + d + "', which the run does not list");
        domains.push_back(d);
        it = domains.end() - 1;
      }
      map.push_back(static_cast<int16_t>(it - domains.begin()));
    }
    domain_map.push_back(std::move(map));
  }
  if (domains.size() > static_cast<size_t>(INT16_MAX))
    Fail(out, "would hold more domains than a trace indexes");
  const int M = static_cast<int>(domains.size());

  size_t source_width = 1;
  int64_t total_docs = 0, total_tokens = 0;
  for (const auto& r : readers) {
    for (const std::string& id : r->SourceIds(0, r->num_documents()))
      source_width = std::max(source_width, id.size());
    total_docs += r->num_documents();
    total_tokens += r->num_tokens();
  }
  if (total_docs > INT32_MAX) Fail(out, "would hold more documents than a trace indexes");

  CheckReplaceable(output);
  WriterLock lock = WriterLock::Acquire(output);
  MergeSummary summary{out, static_cast<int64_t>(shards.size()), total_docs, total_tokens};
  try {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Pset_file_locking(fapl.id(), false, true);
    Handle file(Check(H5Fcreate(out.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), out,
                      "cannot create the merged trace"));
    const hid_t f = file.id();
    const h5::Place root{out, "/"};
    auto at = [&](const char* name) { return h5::Place{out, name}; };

    TraceAttributes run = first;
    run.corpus = options.corpus.value_or(MergedCorpus(readers, shards));
    run.corpus_sha256 = "";  // written below, once the documents are hashed
    WriteNewTraceAttributes(f, run, root);

    // The bulky token-axis datasets: virtual, over the shards in order.
    std::vector<Source> token_sources, logit_sources;
    for (size_t i = 0; i < readers.size(); ++i) {
      const std::string name = SourceName(shards[i], output);
      token_sources.push_back({name, static_cast<hsize_t>(readers[i]->num_tokens())});
      logit_sources.push_back({name, static_cast<hsize_t>(readers[i]->num_logit_rows())});
    }
    const hsize_t l = static_cast<hsize_t>(L), k = static_cast<hsize_t>(K),
                  e = static_cast<hsize_t>(E);
    CreateVirtual(f, trace::ds::kTokenId, H5T_STD_I32LE, {}, token_sources,
                  at(trace::ds::kTokenId));
    CreateVirtual(f, trace::ds::kTokenPosition, H5T_STD_I32LE, {}, token_sources,
                  at(trace::ds::kTokenPosition));
    CreateVirtual(f, trace::ds::kTokenNll, H5T_IEEE_F32LE, {}, token_sources,
                  at(trace::ds::kTokenNll));
    if (predictions)
      CreateVirtual(f, trace::ds::kTokenPredicted, H5T_STD_I32LE, {}, token_sources,
                    at(trace::ds::kTokenPredicted));
    CreateVirtual(f, trace::ds::kTopkIds, H5T_STD_I16LE, {l, k}, token_sources,
                  at(trace::ds::kTopkIds));
    CreateVirtual(f, trace::ds::kTopkWeights, H5T_IEEE_F32LE, {l, k}, token_sources,
                  at(trace::ds::kTopkWeights));
    if (shared_gate)
      CreateVirtual(f, trace::ds::kSharedGate, H5T_IEEE_F32LE, {l}, token_sources,
                    at(trace::ds::kSharedGate));
    if (first.record_logits) {
      Handle half = h5::Float16Type();
      CreateVirtual(f, trace::ds::kRouterLogits, half.id(), {l, e}, logit_sources,
                    at(trace::ds::kRouterLogits));
    }

    // The datasets that depend on a row's place in the whole trace: real, re-based.
    Handle doc = h5::CreateRows(f, trace::ds::kTokenDoc, H5T_STD_I32LE, {}, kChunkRows4,
                                kDeflateLevel, at(trace::ds::kTokenDoc));
    Handle offset = h5::CreateRows(f, trace::ds::kDocOffset, H5T_STD_I64LE, {}, kChunkRows8,
                                   kDeflateLevel, at(trace::ds::kDocOffset));
    Handle domain = h5::CreateRows(f, trace::ds::kDocDomain, H5T_STD_I16LE, {}, kChunkRows4,
                                   kDeflateLevel, at(trace::ds::kDocDomain));
    Handle source_type = h5::FixedStringType(source_width);
    Handle source_id = h5::CreateRows(f, trace::ds::kDocSourceId, source_type.id(), {},
                                      std::max<hsize_t>(64, 65536 / source_width), kDeflateLevel,
                                      at(trace::ds::kDocSourceId));
    Handle logit_token;
    if (first.record_logits)
      logit_token = h5::CreateRows(f, trace::ds::kLogitToken, H5T_STD_I64LE, {}, kChunkRows8,
                                   kDeflateLevel, at(trace::ds::kLogitToken));
    const int64_t zero = 0;
    h5::AppendRows(offset.id(), H5T_NATIVE_INT64, 1, &zero, at(trace::ds::kDocOffset));

    ExpertStats stats(M, L, E);
    Sha256 sha;  // Corpus::Fingerprint of the whole corpus, document by document
    int64_t doc_base = 0, token_base = 0;
    for (size_t i = 0; i < readers.size(); ++i) {
      const TraceReader& r = *readers[i];
      const int64_t D = r.num_documents();
      const std::span<const int64_t> off = r.doc_offsets();
      const std::vector<std::string> ids = r.SourceIds(0, D);
      std::vector<int64_t> ends(static_cast<size_t>(D));
      std::vector<int16_t> doms(static_cast<size_t>(D));
      for (int64_t d = 0; d < D; ++d) {
        ends[static_cast<size_t>(d)] = token_base + off[static_cast<size_t>(d) + 1];
        doms[static_cast<size_t>(d)] =
            domain_map[i].at(static_cast<size_t>(r.doc_domains()[static_cast<size_t>(d)]));
      }
      if (D > 0) {
        h5::AppendRows(offset.id(), H5T_NATIVE_INT64, D, ends.data(), at(trace::ds::kDocOffset));
        h5::AppendRows(domain.id(), H5T_NATIVE_INT16, D, doms.data(), at(trace::ds::kDocDomain));
        const std::vector<char> packed = PackStrings(ids, source_width);
        h5::AppendRows(source_id.id(), source_type.id(), D, packed.data(),
                       at(trace::ds::kDocSourceId));
      }
      // Token rows in blocks of whole documents: /tokens/doc re-based, the ids hashed.
      for (int64_t d0 = 0; d0 < D;) {
        int64_t d1 = d0 + 1;
        while (d1 < D &&
               off[static_cast<size_t>(d1) + 1] - off[static_cast<size_t>(d0)] <= kBlockTokens)
          ++d1;
        const int64_t begin = off[static_cast<size_t>(d0)],
                      count = off[static_cast<size_t>(d1)] - begin;
        const TokenRows rows = r.ReadTokens(begin, count);
        std::vector<int32_t> docs(rows.doc.size());
        for (size_t t = 0; t < docs.size(); ++t)
          docs[t] = static_cast<int32_t>(rows.doc[t] + doc_base);
        if (count > 0)
          h5::AppendRows(doc.id(), H5T_NATIVE_INT32, count, docs.data(), at(trace::ds::kTokenDoc));
        for (int64_t d = d0; d < d1; ++d) {
          const std::string& name = domains[static_cast<size_t>(doms[static_cast<size_t>(d)])];
          const uint64_t n =
              static_cast<uint64_t>(off[static_cast<size_t>(d) + 1] - off[static_cast<size_t>(d)]);
          sha.Update(ids[static_cast<size_t>(d)]);
          sha.Update("\0", 1);
          sha.Update(name);
          sha.Update("\0", 1);
          sha.Update(&n, sizeof(n));
          sha.Update(rows.id.data() + (off[static_cast<size_t>(d)] - begin), n * sizeof(int32_t));
        }
        d0 = d1;
      }
      if (first.record_logits && r.num_logit_rows() > 0) {
        std::vector<int64_t> rows(r.logit_tokens().begin(), r.logit_tokens().end());
        for (int64_t& t : rows) t += token_base;
        h5::AppendRows(logit_token.id(), H5T_NATIVE_INT64, rows.size(), rows.data(),
                       at(trace::ds::kLogitToken));
      }
      // /stats of a complete shard are exact; its domain rows move to the merged indices.
      const ExpertStats s = r.ReadStats();
      const size_t plane = static_cast<size_t>(L) * E;
      for (int m = 0; m <= s.domains(); ++m) {
        const int to = m == s.domains() ? M : domain_map[i][static_cast<size_t>(m)];
        for (size_t j = 0; j < plane; ++j) {
          stats.load()[static_cast<size_t>(to) * plane + j] += s.load()[m * plane + j];
          stats.importance()[static_cast<size_t>(to) * plane + j] += s.importance()[m * plane + j];
        }
      }
      doc_base += D;
      token_base += r.num_tokens();
    }

    {
      Handle domain_type = h5::FixedStringType(std::max<size_t>(
          1,
          domains.empty()
              ? 1
              : std::max_element(domains.begin(), domains.end(), [](const auto& a, const auto& b) {
                  return a.size() < b.size();
                })->size()));
      const size_t width = H5Tget_size(domain_type.id());
      Handle ds = h5::CreateFixed(f, trace::ds::kDomains, domain_type.id(),
                                  {static_cast<hsize_t>(M)}, at(trace::ds::kDomains));
      const std::vector<char> packed = PackStrings(domains, width);
      if (M > 0) h5::WriteAll(ds.id(), domain_type.id(), packed.data(), at(trace::ds::kDomains));
    }
    const hsize_t m1 = static_cast<hsize_t>(M) + 1;
    Handle load =
        h5::CreateFixed(f, trace::ds::kLoad, H5T_STD_I64LE, {m1, l, e}, at(trace::ds::kLoad));
    h5::WriteAll(load.id(), H5T_NATIVE_INT64, stats.load().data(), at(trace::ds::kLoad));
    Handle importance = h5::CreateFixed(f, trace::ds::kImportance, H5T_IEEE_F64LE, {m1, l, e},
                                        at(trace::ds::kImportance));
    h5::WriteAll(importance.id(), H5T_NATIVE_DOUBLE, stats.importance().data(),
                 at(trace::ds::kImportance));
    h5::WriteAttribute(f, trace::attr::kCorpusSha256, sha.HexDigest(), root);
    Check(H5Fflush(f, H5F_SCOPE_LOCAL), out, "cannot flush");
    h5::WriteFlag(f, trace::attr::kComplete, true, root);
    for (Handle* h : {&doc, &offset, &domain, &source_id, &logit_token, &load, &importance})
      h->Close();
    Check(H5Fclose(file.release()), out, "cannot close the merged trace");
  } catch (...) {
    std::filesystem::remove(output, ec);
    throw;
  }
  return summary;
}

std::string FormatMergeSummary(const MergeSummary& s) {
  return "merged " + std::to_string(s.shards) + " shards, " + std::to_string(s.documents) +
         " documents, " + ShortCount(static_cast<double>(s.tokens)) + " tokens -> " + s.output +
         " (virtual datasets over the shards)";
}

}  // namespace moe
