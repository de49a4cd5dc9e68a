#include "analysis/common/space_reservation.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace moe::h5 {

void ReserveSpace(hid_t file, uint64_t bytes, const std::string& path) {
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == nullptr) return;
  const int fd = *static_cast<int*>(handle);  // the sec2 driver's handle is its descriptor
  struct stat st {};
  haddr_t eoa = 0;
  if (::fstat(fd, &st) != 0 || H5Fget_eoa(file, &eoa) < 0) return;
  // HDF5 allocates new space at its end of allocation, which a SWMR writer may keep past the
  // file's size.
  const off_t from = std::max<off_t>(st.st_size, static_cast<off_t>(eoa));
  if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, from, static_cast<off_t>(bytes)) == 0) return;
  const int err = errno;
  if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) return;
  Fail(path, "cannot reserve " + std::to_string(bytes >> 10) +
                 " KiB of disk for the next commit (" + std::strerror(err) +
                 "); what was committed before stays readable");
}

}  // namespace moe::h5
