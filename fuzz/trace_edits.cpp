#include "fuzz/trace_edits.h"

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/common/hdf5_util.h"

namespace moe::fuzz {
namespace {

using h5::Handle;

// Edits may fail inside HDF5 (a dataset that cannot grow); that is no finding, so every check
// is "did it work", and failures are simply skipped.
const h5::Place kRoot{"trace", "/"};

herr_t CollectDataset(hid_t, const char* name, const H5O_info_t* info, void* out) {
  if (info->type == H5O_TYPE_DATASET)
    static_cast<std::vector<std::string>*>(out)->push_back(std::string("/") + name);
  return 0;
}

const std::string& Pick(const std::vector<std::string>& names, FuzzedDataProvider& in) {
  return names[in.ConsumeIntegralInRange<size_t>(0, names.size() - 1)];
}

std::vector<std::string> DatasetNames(hid_t file) {
  std::vector<std::string> names;
  H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, CollectDataset, &names, H5O_INFO_BASIC);
  return names;
}

// The root attribute `name` replaced by one of another value (and maybe another type).
void RewriteAttribute(hid_t file, const std::string& name, FuzzedDataProvider& in) {
  H5Adelete(file, name.c_str());
  try {
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0:
        h5::WriteAttribute(file, name, in.ConsumeIntegral<int64_t>(), kRoot);
        break;
      case 1:  // small values reach past the reader's first checks
        h5::WriteAttribute(file, name, in.ConsumeIntegralInRange<int64_t>(-2, 40), kRoot);
        break;
      case 2:
        h5::WriteAttribute(file, name, in.ConsumeFloatingPoint<double>(), kRoot);
        break;
      case 3:
        h5::WriteAttribute(file, name, in.ConsumeRandomLengthString(64), kRoot);
        break;
      default: {
        std::vector<float> values(in.ConsumeIntegralInRange(0, 12));
        for (float& v : values) v = in.ConsumeFloatingPoint<float>();
        h5::WriteAttribute(file, name, values, kRoot);
      }
    }
  } catch (const std::exception&) {
  }
}

// One element of the dataset overwritten with input bytes, as its own type.
void OverwriteElement(hid_t dataset, FuzzedDataProvider& in) {
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 1) return;
  std::vector<hsize_t> dims(rank), at(rank), one(rank, 1);
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  for (int r = 0; r < rank; ++r) {
    if (dims[r] == 0) return;
    at[r] = in.ConsumeIntegralInRange<hsize_t>(0, dims[r] - 1);
  }
  H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, at.data(), nullptr, one.data(), nullptr);
  Handle mem(H5Screate_simple(rank, one.data(), nullptr));
  Handle type(H5Dget_type(dataset));
  if (H5Tis_variable_str(type.id()) > 0) {
    const std::string text = in.ConsumeRandomLengthString(32);
    const char* ptr = text.c_str();
    H5Dwrite(dataset, type.id(), mem.id(), space.id(), H5P_DEFAULT, &ptr);
    return;
  }
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(H5Tget_size(type.id()));
  bytes.resize(H5Tget_size(type.id()));
  H5Dwrite(dataset, type.id(), mem.id(), space.id(), H5P_DEFAULT, bytes.data());
}

// The first dimension set to a new length (chunked datasets only; others refuse).
void Resize(hid_t dataset, FuzzedDataProvider& in) {
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 1) return;
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  dims[0] = in.ConsumeIntegralInRange<hsize_t>(0, dims[0] * 2 + 2);
  H5Dset_extent(dataset, dims.data());
}

}  // namespace

void EditTrace(const std::filesystem::path& path, FuzzedDataProvider& in) {
  h5::SilenceErrors();
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!file.valid()) return;
  const std::vector<std::string> attributes = h5::AttributeNames(file.id(), kRoot);
  std::vector<std::string> datasets = DatasetNames(file.id());
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0:
        if (!attributes.empty()) RewriteAttribute(file.id(), Pick(attributes, in), in);
        break;
      case 1:
        if (!attributes.empty()) H5Adelete(file.id(), Pick(attributes, in).c_str());
        break;
      case 2:
      case 3:
        if (!datasets.empty()) {
          Handle ds(H5Dopen2(file.id(), Pick(datasets, in).c_str(), H5P_DEFAULT));
          if (!ds.valid()) break;
          if (in.ConsumeBool())
            OverwriteElement(ds.id(), in);
          else
            Resize(ds.id(), in);
        }
        break;
      default:
        if (!datasets.empty()) H5Ldelete(file.id(), Pick(datasets, in).c_str(), H5P_DEFAULT);
    }
  }
}

}  // namespace moe::fuzz
