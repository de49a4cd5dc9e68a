#include "analysis/ablation/ablation_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "analysis/common/hdf5_util.h"
#include "analysis/common/space_reservation.h"
#include "analysis/trace/attributes_io.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace moe {
namespace {

using h5::Handle;
using h5::Place;

constexpr const char* kFormat = "moescope-ablation";
constexpr int64_t kVersion = 1;
constexpr const char* kSummaryColumns[] = {
    "base_nll",  "policy_nll", "delta_nll", "delta_nll_ci_low", "delta_nll_ci_high", "kl",
    "kl_ci_low", "kl_ci_high", "agreement", "agreement_ci_low", "agreement_ci_high"};

Handle OpenFile(const std::string& p, bool write) {
  h5::SilenceErrors();
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) Fail(p, "does not exist");
  if (H5Fis_hdf5(p.c_str()) <= 0) Fail(p, "is not an HDF5 file; not a moescope ablation file");
  Handle f(h5::Check(H5Fopen(p.c_str(), write ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT), p,
                     "cannot be opened"));
  const Place root{p, "/"};
  if (!h5::HasAttribute(f.id(), "format") ||
      h5::ReadStringAttribute(f.id(), "format", root) != kFormat)
    Fail(p, std::string("is not a moescope ablation file (format is not '") + kFormat + "')");
  const int64_t version = h5::ReadIntAttribute(f.id(), "format_version", root);
  if (version != kVersion)
    Fail(p, "has ablation format_version " + std::to_string(version) + "; this moescope reads " +
                std::to_string(kVersion));
  return f;
}

template <typename T>
void WriteArray(hid_t file, const std::string& path, hid_t file_type, hid_t mem_type,
                const std::vector<T>& data, const std::string& p) {
  if (data.empty()) {
    // A zero-length dataset still says the array exists (and is empty).
    const hsize_t zero = 0;
    Handle space(H5Screate_simple(1, &zero, nullptr));
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(lcpl.id(), 1);
    Handle ds(h5::Check(
        H5Dcreate2(file, path.c_str(), file_type, space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
        p, "cannot create " + path));
    return;
  }
  Handle ds = h5::CreateFixed(file, path, file_type, {data.size()}, {p, path});
  h5::WriteAll(ds.id(), mem_type, data.data(), {p, path});
}

template <typename T>
std::vector<T> ReadArray(hid_t file, const std::string& path, hid_t mem_type,
                         const std::string& p) {
  Handle ds = h5::OpenDataset(file, path, {p, path});
  const hsize_t n = h5::Dims(ds.id(), {p, path})[0];
  std::vector<T> out(n);
  if (n > 0) h5::ReadRows(ds.id(), mem_type, 0, n, out.data(), {p, path});
  return out;
}

void WriteStrings(hid_t file, const std::string& path, const std::vector<std::string>& values,
                  const std::string& p) {
  size_t width = 1;
  for (const std::string& s : values) width = std::max(width, s.size());
  std::vector<char> buffer(std::max<size_t>(values.size(), 1) * width, '\0');
  for (size_t i = 0; i < values.size(); ++i)
    std::copy(values[i].begin(), values[i].end(), buffer.begin() + i * width);
  Handle type = h5::FixedStringType(width);
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle ds(h5::Check(
      H5Dcreate2(file, path.c_str(), type.id(), space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT), p,
      "cannot create " + path));
  if (n > 0) h5::WriteAll(ds.id(), type.id(), buffer.data(), {p, path});
}

std::vector<std::string> PolicyGroups(hid_t file, const std::string& p) {
  std::vector<std::string> names;
  if (!h5::Exists(file, "/policies")) return names;
  Handle g(h5::Check(H5Gopen2(file, "/policies", H5P_DEFAULT), p, "cannot open /policies"));
  H5G_info_t info;
  h5::Check(H5Gget_info(g.id(), &info), p, "cannot list /policies");
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[64] = {0};
    H5Lget_name_by_idx(g.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name), H5P_DEFAULT);
    names.push_back(std::string("/policies/") + name);
  }
  return names;
}

bool Completed(hid_t file, const std::string& group, const std::string& p) {
  Handle g(h5::Check(H5Gopen2(file, group.c_str(), H5P_DEFAULT), p, "cannot open " + group));
  return h5::HasAttribute(g.id(), "completed") &&
         h5::ReadIntAttribute(g.id(), "completed", {p, group}) != 0;
}

}  // namespace

void AblationFile::Create(const std::filesystem::path& path, const AblationHeader& h) {
  try {
    WriteHeader(path, h);
  } catch (const Error&) {
    // A header cut short (a full disk) is not a results file: leave the file empty, which
    // `--resume` treats as nothing done (the writer's lock stays on it).
    std::error_code ignored;
    std::filesystem::resize_file(path, 0, ignored);
    throw;
  }
}

void AblationFile::WriteHeader(const std::filesystem::path& path, const AblationHeader& h) {
  h5::SilenceErrors();
  const std::string p = path.string();
  CheckReplaceable(path);
  Handle f(h5::Check(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), p,
                     "cannot be created"));
  const Place root{p, "/"};
  h5::WriteAttribute(f.id(), "format", std::string(kFormat), root);
  h5::WriteAttribute(f.id(), "format_version", kVersion, root);
  h5::WriteAttribute(f.id(), "engine_version", std::string(MOESCOPE_VERSION), root);
  WriteRunAttributes(f.id(), h.run, root);
  h5::WriteAttribute(f.id(), "bootstrap", int64_t{h.bootstrap}, root);
  h5::WriteAttribute(f.id(), "seed", static_cast<int64_t>(h.seed), root);
  h5::WriteAttribute(f.id(), "ci_level", h.ci_level, root);
  const ScoredTokens& t = h.tokens;
  WriteStrings(f.id(), "/domains", t.domains, p);
  WriteArray(f.id(), "/docs/domain", H5T_STD_I16LE, H5T_NATIVE_INT16, t.doc_domain, p);
  WriteStrings(f.id(), "/docs/source_id", t.doc_source, p);
  WriteArray(f.id(), "/docs/offset", H5T_STD_I64LE, H5T_NATIVE_INT64, t.doc_offset, p);
  WriteArray(f.id(), "/tokens/doc", H5T_STD_I32LE, H5T_NATIVE_INT32, t.token_doc, p);
  WriteArray(f.id(), "/tokens/position", H5T_STD_I32LE, H5T_NATIVE_INT32, t.token_position, p);
  WriteArray(f.id(), "/tokens/id", H5T_STD_I32LE, H5T_NATIVE_INT32, t.token_id, p);
  WriteArray(f.id(), "/tokens/target", H5T_STD_I32LE, H5T_NATIVE_INT32, t.token_target, p);
  Handle g(h5::Check(H5Gcreate2(f.id(), "/policies", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), p,
                     "cannot create /policies"));
  h5::Check(H5Fflush(f.id(), H5F_SCOPE_GLOBAL), p, "cannot be flushed");
}

void AblationFile::CheckResumable(const std::filesystem::path& path, const AblationHeader& h) {
  const std::string p = path.string();
  Handle f = OpenFile(p, false);
  const Place root{p, "/"};
  auto same_text = [&](const char* name, const std::string& want) {
    const std::string have = h5::ReadStringAttribute(f.id(), name, root);
    bool same = have == want;
    try {
      same = same || nlohmann::json::parse(have) == nlohmann::json::parse(want);
    } catch (const nlohmann::json::exception&) {
    }
    if (!same)
      Fail(p, std::string("cannot resume: attribute ") + name + " differs from this run's");
  };
  same_text("model_config", h.run.model_config);
  same_text("checkpoint_sha256", h.run.checkpoint_sha256);
  same_text("corpus_sha256", h.run.corpus_sha256);
  same_text("windowing", h.run.windowing);
  auto same_int = [&](const char* name, int64_t want) {
    const int64_t have = h5::ReadIntAttribute(f.id(), name, root);
    if (have != want)
      Fail(p, std::string("cannot resume: attribute ") + name + " is " + std::to_string(have) +
                  ", this run has " + std::to_string(want));
  };
  same_int("bootstrap", h.bootstrap);
  same_int("seed", static_cast<int64_t>(h.seed));
  if (h5::ReadDoubleAttribute(f.id(), "ci_level", root) != h.ci_level)
    Fail(p, "cannot resume: attribute ci_level differs from this run's");
}

std::vector<std::string> AblationFile::CompletedPolicies(const std::filesystem::path& path) {
  const std::string p = path.string();
  Handle f = OpenFile(p, false);
  std::vector<std::string> names;
  for (const std::string& g : PolicyGroups(f.id(), p)) {
    if (!Completed(f.id(), g, p)) continue;
    Handle group(H5Gopen2(f.id(), g.c_str(), H5P_DEFAULT));
    names.push_back(h5::ReadStringAttribute(group.id(), "name", {p, g}));
  }
  return names;
}

void AblationFile::WritePolicy(const std::filesystem::path& path, const AblationResult& r,
                               const std::vector<float>& base_nll) {
  const std::string p = path.string();
  Handle f = OpenFile(p, true);
  // A full disk fails here, before HDF5 writes part of the group (space_reservation.h).
  const uint64_t per_token =
      sizeof(float) * (base_nll.size() + r.delta_nll.size() + r.kl.size()) + r.agree.size();
  h5::ReserveSpace(f.id(), per_token + r.domains.size() * 12 * 8 + (1u << 20), p);
  if (!h5::Exists(f.id(), "/tokens/base_nll"))
    WriteArray(f.id(), "/tokens/base_nll", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, base_nll, p);
  // Groups of unfinished policies (a crash inside a write) are replaced; indices keep order.
  const std::vector<std::string> groups = PolicyGroups(f.id(), p);
  for (const std::string& g : groups) {
    if (Completed(f.id(), g, p)) continue;
    Handle group(H5Gopen2(f.id(), g.c_str(), H5P_DEFAULT));
    if (h5::ReadStringAttribute(group.id(), "name", {p, g}) == r.name) {
      group = Handle();
      h5::Check(H5Ldelete(f.id(), g.c_str(), H5P_DEFAULT), p, "cannot remove " + g);
    }
  }
  char name[32];
  std::snprintf(name, sizeof(name), "/policies/%06zu", groups.size());
  std::string gp = name;
  for (size_t i = groups.size(); h5::Exists(f.id(), gp); ++i) {
    std::snprintf(name, sizeof(name), "/policies/%06zu", i + 1);
    gp = name;
  }
  Handle g(h5::Check(H5Gcreate2(f.id(), gp.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), p,
                     "cannot create " + gp));
  const Place at{p, gp};
  h5::WriteAttribute(g.id(), "name", r.name, at);
  h5::WriteAttribute(g.id(), "kind", r.kind, at);
  h5::WriteAttribute(g.id(), "control_of", r.control_of, at);
  h5::WriteAttribute(g.id(), "policy", r.policy_json, at);
  h5::WriteAttribute(g.id(), "first_layer", int64_t{r.first_layer}, at);
  h5::WriteAttribute(g.id(), "layer", int64_t{r.layer}, at);
  h5::WriteAttribute(g.id(), "expert", int64_t{r.expert}, at);
  h5::WriteAttribute(g.id(), "r", int64_t{r.r}, at);
  h5::WriteAttribute(g.id(), "k", int64_t{r.k}, at);
  // In the group's header with the other attributes (a dataset here, written after the per-token
  // arrays, left a group that a full disk could cut short beyond repair).
  if (!r.experts_per_layer.empty())
    h5::WriteAttribute(g.id(), "experts_per_layer",
                       std::vector<float>(r.experts_per_layer.begin(), r.experts_per_layer.end()),
                       at);
  h5::WriteFlag(g.id(), "completed", false, at);
  std::vector<int64_t> tokens;
  std::vector<std::vector<double>> columns(std::size(kSummaryColumns));
  for (const AblationDomainResult& d : r.domains) {
    tokens.push_back(d.tokens);
    const double values[] = {d.base_nll,         d.policy_nll,        d.delta_nll.value,
                             d.delta_nll.ci_low, d.delta_nll.ci_high, d.kl.value,
                             d.kl.ci_low,        d.kl.ci_high,        d.agreement.value,
                             d.agreement.ci_low, d.agreement.ci_high};
    for (size_t c = 0; c < columns.size(); ++c) columns[c].push_back(values[c]);
  }
  WriteArray(f.id(), gp + "/summary/tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, tokens, p);
  for (size_t c = 0; c < columns.size(); ++c)
    WriteArray(f.id(), gp + "/summary/" + kSummaryColumns[c], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
               columns[c], p);
  if (!r.delta_nll.empty()) {
    WriteArray(f.id(), gp + "/delta_nll", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, r.delta_nll, p);
    WriteArray(f.id(), gp + "/kl", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, r.kl, p);
    WriteArray(f.id(), gp + "/agree", H5T_STD_I8LE, H5T_NATIVE_INT8, r.agree, p);
  }
  h5::Check(H5Fflush(f.id(), H5F_SCOPE_GLOBAL), p, "cannot be flushed");
  h5::WriteFlag(g.id(), "completed", true, at);
  h5::Check(H5Fflush(f.id(), H5F_SCOPE_GLOBAL), p, "cannot be flushed");
}

std::vector<AblationResult> AblationFile::Read(const std::filesystem::path& path,
                                               std::vector<std::string>* domains) {
  const std::string p = path.string();
  Handle f = OpenFile(p, false);
  if (domains != nullptr) {
    Handle ds = h5::OpenDataset(f.id(), "/domains", {p, "/domains"});
    *domains = h5::ReadStrings(ds.id(), 0, h5::Dims(ds.id(), {p, "/domains"})[0], {p, "/domains"});
  }
  std::vector<AblationResult> out;
  for (const std::string& gp : PolicyGroups(f.id(), p)) {
    if (!Completed(f.id(), gp, p)) continue;
    Handle g(H5Gopen2(f.id(), gp.c_str(), H5P_DEFAULT));
    const Place at{p, gp};
    AblationResult r;
    r.name = h5::ReadStringAttribute(g.id(), "name", at);
    r.kind = h5::ReadStringAttribute(g.id(), "kind", at);
    r.control_of = h5::ReadStringAttribute(g.id(), "control_of", at);
    r.policy_json = h5::ReadStringAttribute(g.id(), "policy", at);
    r.first_layer = static_cast<int>(h5::ReadIntAttribute(g.id(), "first_layer", at));
    r.layer = static_cast<int>(h5::ReadIntAttribute(g.id(), "layer", at));
    r.expert = static_cast<int>(h5::ReadIntAttribute(g.id(), "expert", at));
    r.r = static_cast<int>(h5::ReadIntAttribute(g.id(), "r", at));
    r.k = static_cast<int>(h5::ReadIntAttribute(g.id(), "k", at));
    const auto tokens = ReadArray<int64_t>(f.id(), gp + "/summary/tokens", H5T_NATIVE_INT64, p);
    std::vector<std::vector<double>> columns;
    for (const char* c : kSummaryColumns)
      columns.push_back(ReadArray<double>(f.id(), gp + "/summary/" + c, H5T_NATIVE_DOUBLE, p));
    for (size_t m = 0; m < tokens.size(); ++m) {
      AblationDomainResult d;
      d.tokens = tokens[m];
      d.base_nll = columns[0][m];
      d.policy_nll = columns[1][m];
      d.delta_nll = {columns[2][m], columns[3][m], columns[4][m]};
      d.kl = {columns[5][m], columns[6][m], columns[7][m]};
      d.agreement = {columns[8][m], columns[9][m], columns[10][m]};
      r.domains.push_back(d);
    }
    if (h5::Exists(f.id(), gp + "/delta_nll")) {
      r.delta_nll = ReadArray<float>(f.id(), gp + "/delta_nll", H5T_NATIVE_FLOAT, p);
      r.kl = ReadArray<float>(f.id(), gp + "/kl", H5T_NATIVE_FLOAT, p);
      r.agree = ReadArray<int8_t>(f.id(), gp + "/agree", H5T_NATIVE_INT8, p);
    }
    if (h5::HasAttribute(g.id(), "experts_per_layer")) {
      const std::vector<float> experts = h5::ReadFloatsAttribute(g.id(), "experts_per_layer", at);
      r.experts_per_layer.assign(experts.begin(), experts.end());
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace moe
