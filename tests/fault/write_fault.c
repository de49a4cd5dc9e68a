// A fault-injection shim for tests, loaded with LD_PRELOAD into a moescope process: writes to
// files whose path contains $MOESCOPE_FAULT_PATH succeed for the first $MOESCOPE_FAULT_AFTER_BYTES
// bytes, then fail with $MOESCOPE_FAULT_ERRNO (ENOSPC or EIO), as a disk that fills up or a
// device that breaks would: the write that crosses the budget is short, every later one fails,
// and so do fsync/fdatasync on those files. With MOESCOPE_FAULT_MODE=grow, only writes that
// would grow the file fail once the budget is spent, as on a real full disk where blocks already
// allocated can still be overwritten. Without $MOESCOPE_FAULT_PATH it only passes calls on.
//
// It wraps the calls that reach the kernel through the dynamic linker: write, pwrite, pwritev,
// writev, sendfile, copy_file_range, fsync, fdatasync, fallocate. (stdio's own writes do not go
// through them, so moescope writes its outputs with POSIX calls.)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long g_budget = -1;  // bytes left before faults; -1 = not configured
static int g_errno = ENOSPC;
static int g_grow_only;           // MOESCOPE_FAULT_MODE=grow
static long long g_reserved_end;  // grow mode: end of the space fallocate reserved
static const char* g_path;

static void Configure(void) {
  static int done;
  if (done) return;
  done = 1;
  g_path = getenv("MOESCOPE_FAULT_PATH");
  const char* after = getenv("MOESCOPE_FAULT_AFTER_BYTES");
  const char* err = getenv("MOESCOPE_FAULT_ERRNO");
  if (g_path == NULL || *g_path == '\0' || after == NULL) {
    g_path = NULL;
    return;
  }
  g_budget = atoll(after);
  if (err != NULL && strcmp(err, "EIO") == 0) g_errno = EIO;
  const char* mode = getenv("MOESCOPE_FAULT_MODE");
  g_grow_only = mode != NULL && strcmp(mode, "grow") == 0;
}

// Whether `fd` is a file the faults apply to.
static int Targeted(int fd) {
  Configure();
  if (g_path == NULL) return 0;
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  return strstr(target, g_path) != NULL;
}

// Grow mode: the file may use what it has (its size, or space reserved past it) plus the budget;
// growing past what it has spends the budget.
static size_t AllowedToGrow(int fd, size_t want, off_t offset) {
  struct stat st;
  if (offset < 0) offset = lseek(fd, 0, SEEK_CUR);
  if (offset < 0 || fstat(fd, &st) != 0) return want;
  const long long have = st.st_size > g_reserved_end ? st.st_size : g_reserved_end;
  const long long limit = have + (g_budget > 0 ? g_budget : 0);
  if (offset >= limit) {
    errno = g_errno;
    return 0;
  }
  const size_t n = (long long)want < limit - offset ? want : (size_t)(limit - offset);
  if (offset + (long long)n > have) g_budget -= offset + (long long)n - have;
  return n;
}

// How many of `want` bytes may be written to `fd` at `offset` (-1: the file position): all of
// them for other files; for targeted files what is left of the budget, or in grow mode what
// AllowedToGrow says (0 sets errno and means "fail").
static size_t Allowed(int fd, size_t want, off_t offset) {
  if (!Targeted(fd)) return want;
  if (g_grow_only) return AllowedToGrow(fd, want, offset);
  if (g_budget <= 0) {
    errno = g_errno;
    return 0;
  }
  const size_t allowed = (long long)want < g_budget ? want : (size_t)g_budget;
  g_budget -= (long long)allowed;
  return allowed;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void* buf, size_t count) {
  const size_t n = count == 0 ? 0 : Allowed(fd, count, -1);
  if (count > 0 && n == 0) return -1;
  return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  const size_t n = count == 0 ? 0 : Allowed(fd, count, offset);
  if (count > 0 && n == 0) return -1;
  return REAL(pwrite)(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t offset) {
  return pwrite(fd, buf, count, offset);
}

static size_t Total(const struct iovec* iov, int iovcnt) {
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  return total;
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  const size_t total = Total(iov, iovcnt);
  if (!Targeted(fd) || total == 0) return REAL(writev)(fd, iov, iovcnt);
  // Vectors are written whole or, across the budget, as far as the budget goes.
  const size_t n = Allowed(fd, total, -1);
  if (n == 0) return -1;
  if (n == total) return REAL(writev)(fd, iov, iovcnt);
  size_t left = n, done = 0;
  for (int i = 0; i < iovcnt && left > 0; ++i) {
    const size_t part = iov[i].iov_len < left ? iov[i].iov_len : left;
    const ssize_t w = REAL(write)(fd, iov[i].iov_base, part);
    if (w < 0) return done > 0 ? (ssize_t)done : -1;
    done += (size_t)w;
    left -= (size_t)w;
  }
  return (ssize_t)done;
}

ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  const size_t total = Total(iov, iovcnt);
  if (!Targeted(fd) || total == 0) return REAL(pwritev)(fd, iov, iovcnt, offset);
  if (Allowed(fd, total, offset) < total) {  // partial vectored writes are not modelled: fail whole
    g_budget = 0;
    errno = g_errno;
    return -1;
  }
  return REAL(pwritev)(fd, iov, iovcnt, offset);
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  const size_t n = count == 0 ? 0 : Allowed(out_fd, count, -1);
  if (count > 0 && n == 0) return -1;
  return REAL(sendfile)(out_fd, in_fd, offset, n);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) {
  return sendfile(out_fd, in_fd, offset, count);
}

ssize_t copy_file_range(int in_fd, off_t* in_off, int out_fd, off_t* out_off, size_t count,
                        unsigned flags) {
  const size_t n = count == 0 ? 0 : Allowed(out_fd, count, out_off ? *out_off : -1);
  if (count > 0 && n == 0) return -1;
  return REAL(copy_file_range)(in_fd, in_off, out_fd, out_off, n, flags);
}

int fsync(int fd) {
  if (Targeted(fd) && g_budget <= 0 && !g_grow_only) {
    errno = g_errno;
    return -1;
  }
  return REAL(fsync)(fd);
}

int fdatasync(int fd) {
  if (Targeted(fd) && g_budget <= 0 && !g_grow_only) {
    errno = g_errno;
    return -1;
  }
  return REAL(fdatasync)(fd);
}

// Reserving space spends the budget in grow mode (and fails, like a full disk, when the budget
// cannot cover it); in the other modes it fails once the budget is spent.
int fallocate(int fd, int mode, off_t offset, off_t len) {
  if (Targeted(fd)) {
    if (!g_grow_only && g_budget <= 0) {
      errno = g_errno;
      return -1;
    }
    if (g_grow_only) {
      struct stat st;
      if (fstat(fd, &st) == 0) {
        const long long have = st.st_size > g_reserved_end ? st.st_size : g_reserved_end;
        const long long need = offset + len - have;
        if (need > g_budget) {
          errno = ENOSPC;
          return -1;
        }
        if (need > 0) {
          g_budget -= need;
          g_reserved_end = offset + len;
        }
      }
    }
  }
  return REAL(fallocate)(fd, mode, offset, len);
}

int fallocate64(int fd, int mode, off_t offset, off_t len) {
  return fallocate(fd, mode, offset, len);
}
