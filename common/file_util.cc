#include "common/file_util.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace shorthorn {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

Result<std::string> ReadAll(int fd, size_t max_bytes, const std::string& path) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return Status(ErrorKind::kIoError,
                    "read " + path + ": larger than " + std::to_string(max_bytes) + " bytes", EIO);
    }
  }
}

}  // namespace

Result<std::string> ReadFileToString(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open " + path);
  return ReadAll(fd.get(), SIZE_MAX, path);
}

Result<std::string> ReadFileAt(int dir_fd, const std::string& name, size_t max_bytes,
                               const std::string& path) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open " + path);
  return ReadAll(fd.get(), max_bytes, path);
}

Status SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open directory " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync directory " + dir);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, "create " + tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoStatus(errno, "write " + tmp);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    Status s = ErrnoStatus(errno, "fsync " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoStatus(errno, "rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return s;
  }
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  return SyncDirectory(dir);
}

}  // namespace shorthorn

#include <sys/stat.h>

namespace shorthorn {

Status MakeDirs(const std::string& path, unsigned mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "create directory " + prefix);
    }
  }
  return Status::Ok();
}

}  // namespace shorthorn

namespace shorthorn {
void TuneAllocator() {
  // Above the largest payload (4 MiB), so none is mapped on its own; free
  // memory at the top of a heap is returned to the system past 64 MiB.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

std::shared_ptr<uint8_t> AllocateDirectIoBuffer(size_t length) {
  // aligned_alloc wants the size to be a multiple of the alignment.
  size_t rounded = (std::max<size_t>(length, 1) + kDirectIoAlignment - 1) / kDirectIoAlignment *
                   kDirectIoAlignment;
  return std::shared_ptr<uint8_t>(
      static_cast<uint8_t*>(std::aligned_alloc(kDirectIoAlignment, rounded)), std::free);
}
}  // namespace shorthorn
