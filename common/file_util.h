// Small file helpers over POSIX: whole-file read, atomic replace (write a
// temp file, fsync it, rename over the target, fsync the directory) and an
// RAII file descriptor. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

Result<std::string> ReadFileToString(const std::string& path);
// The file `name` inside directory `dir_fd` (AT_FDCWD: the working
// directory), never following a symbolic link at the last step; larger than
// `max_bytes`: kIoError. `path` names it in errors.
Result<std::string> ReadFileAt(int dir_fd, const std::string& name, size_t max_bytes,
                               const std::string& path);

// Replaces `path` with `content` so that a crash leaves either the old or the
// new content, never a mix, and the new content is durable on return.
Status WriteFileAtomic(const std::string& path, std::string_view content);

// fsync of a directory, making renames and creations in it durable.
Status SyncDirectory(const std::string& dir);

}  // namespace shorthorn

namespace shorthorn {
// mkdir -p with `mode` for directories it creates.
Status MakeDirs(const std::string& path, unsigned mode = 0755);

// The alignment O_DIRECT wants of buffers, offsets and lengths here.
inline constexpr size_t kDirectIoAlignment = 4096;

// An uninitialized buffer of `length` bytes (at least 1), aligned for
// O_DIRECT; null when out of memory.
std::shared_ptr<uint8_t> AllocateDirectIoBuffer(size_t length);

// Keeps the daemons' large buffers (I/O payloads up to 4 MiB, backup blocks)
// in the heap, where freed memory is reused, instead of a fresh mmap per
// buffer: glibc maps every aligned_alloc above 128 KiB anew and never
// raises that threshold for aligned allocations, and touching a fresh
// mapping costs a page fault per 4 KiB (measured here: allocate, fill and
// hash a 2 MiB aligned buffer, 530 MB/s with fresh mappings, 14 GB/s from
// the heap). Call once at the start of main, before any thread.
void TuneAllocator();
}  // namespace shorthorn
