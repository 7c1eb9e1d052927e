// Design notes: extents come from lseek(SEEK_DATA/SEEK_HOLE), which every
// Linux filesystem answers (tmpfs and ext4 included), rather than FIEMAP,
// which tmpfs lacks. On ext4 and xfs, unwritten (fallocated) extents read as
// holes to SEEK_DATA; the replica therefore writes real zeros where it needs
// a block to shadow a lower layer, never FALLOC_FL_ZERO_RANGE.
#include "replicad/core/layer_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <boost/endian/conversion.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "common/file_util.h"

namespace shorthorn::replicad {
namespace {

constexpr uint64_t kPiece = 1 << 20;

}  // namespace

Status CreateLayerFile(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "create " + path);
  Status s;
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    s = ErrnoStatus(errno, "truncate " + path);
  } else if (::fsync(fd.get()) != 0) {
    s = ErrnoStatus(errno, "fsync " + path);
  }
  // A retry reuses the name (the layer id was not committed): leave nothing.
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

Result<std::vector<FileExtent>> AllocatedExtents(int fd, uint64_t start, uint64_t end,
                                                 const std::string& name, size_t max_count) {
  std::vector<FileExtent> out;
  end = std::min(end, FileSize(fd));
  uint64_t pos = start;
  while (pos < end && out.size() < max_count) {
    off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after pos
      return ErrnoStatus(errno, "seek data in " + name);
    }
    if (static_cast<uint64_t>(data) >= end) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return ErrnoStatus(errno, "seek hole in " + name);
    uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    out.push_back({static_cast<uint64_t>(data), stop - static_cast<uint64_t>(data)});
    pos = stop;
  }
  return out;
}

uint64_t AllocatedBytes(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

uint64_t FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

Result<uint64_t> PreadUpTo(int fd, uint8_t* buf, uint64_t length, uint64_t offset,
                           const std::string& name) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, buf + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "pread " + name);
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return done;
}

Status PreadFull(int fd, uint8_t* buf, uint64_t length, uint64_t offset, const std::string& name) {
  auto done = PreadUpTo(fd, buf, length, offset, name);
  if (!done.ok()) return done.status();
  // Past the end of a smaller (older) layer: zeros.
  std::fill(buf + *done, buf + length, 0);
  return Status::Ok();
}

Status PwriteFull(int fd, const uint8_t* buf, uint64_t length, uint64_t offset,
                  const std::string& name) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pwrite(fd, buf + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "pwrite " + name);
    }
    if (n == 0) return ErrnoStatus(EIO, "pwrite " + name);
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status WriteZeros(int fd, uint64_t offset, uint64_t length, const std::string& name) {
  static constexpr uint64_t kZeroBuf = 256 << 10;
  auto zeros = std::make_unique<uint8_t[]>(kZeroBuf);
  while (length > 0) {
    uint64_t n = std::min(length, kZeroBuf);
    SH_RETURN_IF_ERROR(PwriteFull(fd, zeros.get(), n, offset, name));
    offset += n;
    length -= n;
  }
  return Status::Ok();
}

Status PunchHole(int fd, uint64_t offset, uint64_t length, const std::string& name) {
  if (length == 0) return Status::Ok();
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
    return ErrnoStatus(errno, "punch a hole in " + name);
  }
  return Status::Ok();
}

Result<std::string> LayerChecksum(int fd, const std::string& name, const ProgressFn& progress) {
  auto extents = AllocatedExtents(fd, 0, FileSize(fd), name);
  if (!extents.ok()) return extents.status();
  return ExtentsChecksum(fd, *extents, name, progress);
}

Result<std::string> ExtentsChecksum(int fd, const std::vector<FileExtent>& extents,
                                    const std::string& name, const ProgressFn& progress) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  auto buf = std::make_unique<uint8_t[]>(kPiece);
  uint64_t hashed = 0;
  for (const auto& e : extents) {
    uint8_t head[16];
    boost::endian::store_little_u64(head, e.offset);
    boost::endian::store_little_u64(head + 8, e.length);
    XXH3_64bits_update(state.get(), head, sizeof(head));
    for (uint64_t off = 0; off < e.length; off += kPiece) {
      uint64_t n = std::min(kPiece, e.length - off);
      SH_RETURN_IF_ERROR(PreadFull(fd, buf.get(), n, e.offset + off, name));
      XXH3_64bits_update(state.get(), buf.get(), n);
      hashed += n;
      if (progress && !progress(hashed)) {
        return Status(ErrorKind::kUnavailable, "checksum " + name + ": stopped", ECANCELED);
      }
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  return std::string(hex);
}

}  // namespace shorthorn::replicad
