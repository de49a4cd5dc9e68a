#include "analysis/common/hdf5_util.h"

#include "core/error.h"

namespace moe::h5 {
namespace {

struct WalkState {
  std::string innermost;  // description of the deepest entry (where HDF5 found the problem)
  std::string outermost;  // description of the API call that failed
};

herr_t CollectError(unsigned n, const H5E_error2_t* e, void* data) {
  auto* state = static_cast<WalkState*>(data);
  std::string text = e->desc != nullptr ? e->desc : "";
  char minor[256] = {0};
  if (H5Eget_msg(e->min_num, nullptr, minor, sizeof(minor)) > 0 &&
      text.find(minor) == std::string::npos)
    text += std::string(text.empty() ? "" : ": ") + minor;
  if (n == 0) state->outermost = text;
  state->innermost = text;
  return 0;
}

// The dataspace of `count` rows starting at `begin` of a dataset whose rows are `dims[1..]`.
Handle SelectRows(hid_t dataset, hsize_t begin, hsize_t count, const Place& where) {
  Handle space(Check(H5Dget_space(dataset), where.str(), "cannot read its dataspace"));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  if (rank == 0 || begin + count > dims[0])
    Check(-1, where.str(),
          "rows " + std::to_string(begin) + ".." + std::to_string(begin + count) +
              " are outside its " + std::to_string(rank ? dims[0] : 0) + " rows");
  std::vector<hsize_t> start(dims.size(), 0), size = dims;
  start[0] = begin;
  size[0] = count;
  Check(
      H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start.data(), nullptr, size.data(), nullptr),
      where.str(), "cannot select rows");
  return space;
}

Handle MemorySpace(hid_t dataset, hsize_t count, const Place& where) {
  std::vector<hsize_t> dims = Dims(dataset, where);
  dims[0] = count;
  return Handle(Check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                      where.str(), "cannot make a memory dataspace"));
}

Handle OpenAttribute(hid_t object, const std::string& name, const Place& where) {
  if (H5Aexists(object, name.c_str()) <= 0) Fail(where.str(), "has no attribute '" + name + "'");
  return Handle(Check(H5Aopen(object, name.c_str(), H5P_DEFAULT), where.str(),
                      "cannot open attribute '" + name + "'"));
}

// Creates the attribute, or opens it when it exists with the same type and shape.
Handle CreateAttribute(hid_t object, const std::string& name, hid_t type, hid_t space,
                       const Place& where) {
  if (H5Aexists(object, name.c_str()) > 0)
    Check(H5Adelete(object, name.c_str()), where.str(), "cannot replace attribute '" + name + "'");
  return Handle(Check(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                      where.str(), "cannot create attribute '" + name + "'"));
}

void WriteScalar(hid_t object, const std::string& name, hid_t file_type, hid_t mem_type,
                 const void* value, const Place& where) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr = CreateAttribute(object, name, file_type, space.id(), where);
  Check(H5Awrite(attr.id(), mem_type, value), where.str(), "cannot write attribute '" + name + "'");
}

void ReadScalar(hid_t object, const std::string& name, hid_t mem_type, void* out,
                const Place& where) {
  Handle attr = OpenAttribute(object, name, where);
  Handle space(H5Aget_space(attr.id()));
  if (H5Sget_simple_extent_npoints(space.id()) != 1)
    Fail(where.str(), "attribute '" + name + "' is not a single value");
  Check(H5Aread(attr.id(), mem_type, out), where.str(),
        "attribute '" + name + "' cannot be read as a number");
}

// HDF5's low-level I/O messages span lines ("time = <ctime>\n, filename = ..., buf = 0x...,
// error message = 'No space left on device', ..."); errors are one line, with the system's
// reason and without the addresses.
std::string OneLine(std::string text) {
  const std::string marker = "error message = '";
  const size_t reason = text.find(marker);
  if (reason != std::string::npos) {
    const size_t begin = reason + marker.size(), end = text.find('\'', begin);
    const size_t details = text.find(": time =");
    text = text.substr(0, details == std::string::npos ? 0 : details) + ": " +
           text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

// A file whose close failed (a full disk) stays in HDF5's tables, and the library's exit handler
// crashes closing it again; every object moescope opens is closed explicitly, so the handler has
// nothing to do. H5dont_atexit only takes effect before HDF5's first use, hence at start-up.
[[maybe_unused]] const herr_t kNoExitHandler = H5dont_atexit();

}  // namespace

void SilenceErrors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string ErrorDetail() {
  WalkState state;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, CollectError, &state);
  if (state.innermost.empty() || state.innermost == state.outermost)
    return OneLine(state.outermost);
  return OneLine(state.outermost + ": " + state.innermost);
}

hid_t Check(hid_t status, const std::string& where, const std::string& what) {
  if (status >= 0) return status;
  const std::string detail = ErrorDetail();
  H5Eclear2(H5E_DEFAULT);
  throw Error(where + ": " + what + (detail.empty() ? "" : " (HDF5: " + detail + ")"));
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Close();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::Close() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      H5Idec_ref(id_);
      break;
  }
  id_ = H5I_INVALID_HID;
}

Handle Float16Type() {
  // The layout numpy and h5py call float16: sign bit 15, exponent bits 10..14 (bias 15),
  // mantissa bits 0..9.
  Handle t(H5Tcopy(H5T_IEEE_F32LE));
  H5Tset_fields(t.id(), 15, 10, 5, 0, 10);
  H5Tset_size(t.id(), 2);
  H5Tset_ebias(t.id(), 15);
  H5Tset_order(t.id(), H5T_ORDER_LE);
  return t;
}

Handle FixedStringType(size_t bytes) {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id(), bytes == 0 ? 1 : bytes);
  H5Tset_strpad(t.id(), H5T_STR_NULLPAD);
  H5Tset_cset(t.id(), H5T_CSET_UTF8);
  return t;
}

Handle VariableStringType() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id(), H5T_VARIABLE);
  H5Tset_cset(t.id(), H5T_CSET_UTF8);
  return t;
}

// Missing intermediate groups are created, as h5py does.
static Handle LinkCreationList() {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  return lcpl;
}

Handle CreateRows(hid_t file, const std::string& path, hid_t type,
                  const std::vector<hsize_t>& row_shape, hsize_t chunk_rows, int deflate_level,
                  const Place& where) {
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{chunk_rows};
  for (hsize_t d : row_shape) {
    dims.push_back(d);
    max_dims.push_back(d);
    chunk.push_back(d);
  }
  Handle space(Check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()),
                     where.str(), "cannot make the dataspace of " + path));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  Check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), where.str(),
        "cannot set the chunk shape of " + path);
  if (deflate_level > 0) {
    H5Pset_shuffle(dcpl.id());
    H5Pset_deflate(dcpl.id(), static_cast<unsigned>(deflate_level));
  }
  Handle lcpl = LinkCreationList();
  return Handle(
      Check(H5Dcreate2(file, path.c_str(), type, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
            where.str(), "cannot create dataset " + path));
}

Handle CreateFixed(hid_t file, const std::string& path, hid_t type,
                   const std::vector<hsize_t>& dims, const Place& where) {
  Handle space(Check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                     where.str(), "cannot make the dataspace of " + path));
  Handle lcpl = LinkCreationList();
  return Handle(
      Check(H5Dcreate2(file, path.c_str(), type, space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
            where.str(), "cannot create dataset " + path));
}

bool Exists(hid_t file, const std::string& path) {
  // Each parent must exist before H5Lexists may be asked about the child.
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) return true;
  }
}

Handle OpenDataset(hid_t file, const std::string& path, const Place& where) {
  if (!Exists(file, path)) Fail(where.file, "has no dataset " + path);
  return Handle(
      Check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), where.file, "cannot open dataset " + path));
}

std::vector<hsize_t> Dims(hid_t dataset, const Place& where) {
  Handle space(Check(H5Dget_space(dataset), where.str(), "cannot read its dataspace"));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  Check(rank, where.str(), "has no simple dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return dims;
}

void SetRows(hid_t dataset, hsize_t rows, const Place& where) {
  std::vector<hsize_t> dims = Dims(dataset, where);
  dims[0] = rows;
  Check(H5Dset_extent(dataset, dims.data()), where.str(),
        "cannot resize to " + std::to_string(rows) + " rows");
}

void WriteRows(hid_t dataset, hid_t mem_type, hsize_t begin, hsize_t count, const void* data,
               const Place& where) {
  if (count == 0) return;
  Handle file_space = SelectRows(dataset, begin, count, where);
  Handle mem_space = MemorySpace(dataset, count, where);
  Check(H5Dwrite(dataset, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data),
        where.str(), "cannot write rows");
}

hsize_t AppendRows(hid_t dataset, hid_t mem_type, hsize_t count, const void* data,
                   const Place& where) {
  const hsize_t old_rows = Dims(dataset, where)[0];
  if (count == 0) return old_rows;
  SetRows(dataset, old_rows + count, where);
  WriteRows(dataset, mem_type, old_rows, count, data, where);
  return old_rows + count;
}

void ReadRows(hid_t dataset, hid_t mem_type, hsize_t begin, hsize_t count, void* out,
              const Place& where) {
  if (count == 0) return;
  Handle file_space = SelectRows(dataset, begin, count, where);
  Handle mem_space = MemorySpace(dataset, count, where);
  Check(H5Dread(dataset, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, out), where.str(),
        "cannot read rows " + std::to_string(begin) + ".." + std::to_string(begin + count));
}

void WriteAll(hid_t dataset, hid_t mem_type, const void* data, const Place& where) {
  Check(H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where.str(),
        "cannot write");
}

void WriteAttribute(hid_t object, const std::string& name, const std::string& value,
                    const Place& where) {
  Handle type = VariableStringType();
  const char* text = value.c_str();
  WriteScalar(object, name, type.id(), type.id(), &text, where);
}

void WriteAttribute(hid_t object, const std::string& name, int64_t value, const Place& where) {
  WriteScalar(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, where);
}

void WriteAttribute(hid_t object, const std::string& name, double value, const Place& where) {
  WriteScalar(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, where);
}

void WriteAttribute(hid_t object, const std::string& name, const std::vector<float>& value,
                    const Place& where) {
  const hsize_t n = value.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr = CreateAttribute(object, name, H5T_IEEE_F32LE, space.id(), where);
  Check(H5Awrite(attr.id(), H5T_NATIVE_FLOAT, value.data()), where.str(),
        "cannot write attribute '" + name + "'");
}

void WriteFlag(hid_t object, const std::string& name, bool value, const Place& where) {
  const int8_t v = value ? 1 : 0;
  if (H5Aexists(object, name.c_str()) > 0) {
    // Rewriting an existing attribute's value is allowed during SWMR writing; creating is not.
    Handle attr = OpenAttribute(object, name, where);
    Check(H5Awrite(attr.id(), H5T_NATIVE_INT8, &v), where.str(),
          "cannot write attribute '" + name + "'");
    return;
  }
  WriteScalar(object, name, H5T_STD_I8LE, H5T_NATIVE_INT8, &v, where);
}

bool HasAttribute(hid_t object, const std::string& name) {
  return H5Aexists(object, name.c_str()) > 0;
}

static herr_t CollectName(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

std::vector<std::string> AttributeNames(hid_t object, const Place& where) {
  std::vector<std::string> names;
  hsize_t index = 0;
  Check(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, CollectName, &names), where.str(),
        "cannot list attributes");
  return names;
}

std::string ReadStringAttribute(hid_t object, const std::string& name, const Place& where) {
  Handle attr = OpenAttribute(object, name, where);
  Handle type(H5Aget_type(attr.id()));
  if (H5Tget_class(type.id()) != H5T_STRING)
    Fail(where.str(), "attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(type.id()) > 0) {
    Handle mem = VariableStringType();
    char* text = nullptr;
    Check(H5Aread(attr.id(), mem.id(), &text), where.str(), "cannot read attribute '" + name + "'");
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type.id());
  std::string value(size, '\0');
  Handle mem = FixedStringType(size);
  Check(H5Aread(attr.id(), mem.id(), value.data()), where.str(),
        "cannot read attribute '" + name + "'");
  value.resize(value.find_last_not_of('\0') + 1);
  return value;
}

int64_t ReadIntAttribute(hid_t object, const std::string& name, const Place& where) {
  int64_t value = 0;
  ReadScalar(object, name, H5T_NATIVE_INT64, &value, where);
  return value;
}

double ReadDoubleAttribute(hid_t object, const std::string& name, const Place& where) {
  double value = 0;
  ReadScalar(object, name, H5T_NATIVE_DOUBLE, &value, where);
  return value;
}

std::vector<float> ReadFloatsAttribute(hid_t object, const std::string& name, const Place& where) {
  Handle attr = OpenAttribute(object, name, where);
  Handle space(H5Aget_space(attr.id()));
  std::vector<float> value(static_cast<size_t>(H5Sget_simple_extent_npoints(space.id())));
  Check(H5Aread(attr.id(), H5T_NATIVE_FLOAT, value.data()), where.str(),
        "attribute '" + name + "' cannot be read as numbers");
  return value;
}

std::vector<std::string> ReadStrings(hid_t dataset, hsize_t begin, hsize_t count,
                                     const Place& where) {
  Handle type(H5Dget_type(dataset));
  if (H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) > 0)
    Fail(where.str(), "is not a fixed-length string dataset");
  const size_t width = H5Tget_size(type.id());
  Handle mem = FixedStringType(width);
  std::vector<char> bytes(static_cast<size_t>(count) * width);
  ReadRows(dataset, mem.id(), begin, count, bytes.data(), where);
  std::vector<std::string> out;
  for (hsize_t i = 0; i < count; ++i) {
    std::string s(bytes.data() + i * width, width);
    s.resize(s.find_last_not_of('\0') + 1);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace moe::h5
