#pragma once
// A thin layer over the HDF5 C API for the trace writer and reader: handles that close
// themselves, failures turned into moe::Error with the file and object named (HDF5's own error
// printing is switched off), and the few dataset and attribute shapes traces use.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace moe::h5 {

// HDF5 prints its error stack to stderr by default; traces report failures as moe::Error
// instead. The thread-safe HDF5 build keeps that setting per thread, so every thread that calls
// HDF5 calls this first.
void SilenceErrors();

// The calling thread's HDF5 error stack in one line (innermost cause last), "" when empty.
std::string ErrorDetail();

// Throws Error("<where>: <what> (<HDF5 detail>)") when `status` is negative; returns it otherwise.
hid_t Check(hid_t status, const std::string& where, const std::string& what);

// Owns one HDF5 identifier of any kind and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { Close(); }

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void Close();
  // Gives up ownership without closing.
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Types the trace stores that HDF5 has no predefined name for.
Handle Float16Type();                  // IEEE binary16, little-endian (numpy float16)
Handle FixedStringType(size_t bytes);  // null-padded UTF-8 of at most `bytes` (numpy 'S')
Handle VariableStringType();           // variable-length UTF-8 (h5py str)

// Where messages say the failure happened: "<file>:<object>".
struct Place {
  std::string file;
  std::string object;
  std::string str() const { return file + ":" + object; }
};

// --- datasets ------------------------------------------------------------------------------

// A chunked dataset whose first axis (rows) starts at 0 and grows without limit; each row has
// `row_shape`. `chunk_rows` rows form one chunk, deflate-compressed at `deflate_level` (0 = none).
Handle CreateRows(hid_t file, const std::string& path, hid_t type,
                  const std::vector<hsize_t>& row_shape, hsize_t chunk_rows, int deflate_level,
                  const Place& where);
// A dataset of fixed `dims` (contiguous).
Handle CreateFixed(hid_t file, const std::string& path, hid_t type,
                   const std::vector<hsize_t>& dims, const Place& where);
Handle OpenDataset(hid_t file, const std::string& path, const Place& where);
bool Exists(hid_t file, const std::string& path);

std::vector<hsize_t> Dims(hid_t dataset, const Place& where);
// Grows (or shrinks) the first axis to `rows`.
void SetRows(hid_t dataset, hsize_t rows, const Place& where);
// Writes `count` rows from `data` (mem_type elements, row-major) at row `begin`; the dataset
// must already hold begin + count rows.
void WriteRows(hid_t dataset, hid_t mem_type, hsize_t begin, hsize_t count, const void* data,
               const Place& where);
// SetRows(old + count) followed by WriteRows at the old end; returns the new row count.
hsize_t AppendRows(hid_t dataset, hid_t mem_type, hsize_t count, const void* data,
                   const Place& where);
void ReadRows(hid_t dataset, hid_t mem_type, hsize_t begin, hsize_t count, void* out,
              const Place& where);
void WriteAll(hid_t dataset, hid_t mem_type, const void* data, const Place& where);

// --- attributes (created before SWMR starts; only their values change afterwards) ----------

void WriteAttribute(hid_t object, const std::string& name, const std::string& value,
                    const Place& where);
void WriteAttribute(hid_t object, const std::string& name, int64_t value, const Place& where);
void WriteAttribute(hid_t object, const std::string& name, double value, const Place& where);
void WriteAttribute(hid_t object, const std::string& name, const std::vector<float>& value,
                    const Place& where);
// A one-byte 0/1 flag (int8); rewritten in place, so it may change while SWMR writing.
void WriteFlag(hid_t object, const std::string& name, bool value, const Place& where);

bool HasAttribute(hid_t object, const std::string& name);
std::vector<std::string> AttributeNames(hid_t object, const Place& where);
std::string ReadStringAttribute(hid_t object, const std::string& name, const Place& where);
int64_t ReadIntAttribute(hid_t object, const std::string& name, const Place& where);
double ReadDoubleAttribute(hid_t object, const std::string& name, const Place& where);
std::vector<float> ReadFloatsAttribute(hid_t object, const std::string& name, const Place& where);

// Fixed-length string rows [rows] of a 1-D dataset, trailing NULs removed.
std::vector<std::string> ReadStrings(hid_t dataset, hsize_t begin, hsize_t count,
                                     const Place& where);

}  // namespace moe::h5
