// LoopDevice: a loop block device bound to a volume's FUSE file, with direct
// I/O and 4096-byte logical blocks (DESIGN §4), plus the stable symlink
// <dev_dir>/<volume>. RAII: destruction releases the device.
//
// The device is configured with LO_FLAGS_AUTOCLEAR and fused keeps one file
// descriptor open on it for as long as the volume is attached, so if fused
// dies the kernel releases the device as soon as its last user (a mounted
// file system) lets go. Thread-compatible: one owner.
#pragma once

#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace shorthorn::fused {

class LoopDevice {
 public:
  // Binds a free loop device to `backing_file`.
  static Result<LoopDevice> Attach(const std::string& backing_file, uint32_t block_size);
  // The loop device already bound to `backing_file` (a file system kept it
  // while fused restarted), if any: NotFound otherwise.
  static Result<LoopDevice> Adopt(const std::string& backing_file);

  LoopDevice() = default;
  LoopDevice(LoopDevice&&) = default;
  LoopDevice& operator=(LoopDevice&&) = default;
  ~LoopDevice();

  const std::string& path() const { return path_; }
  bool attached() const { return fd_.valid(); }

  // Busy when something else holds the device open (a mounted file system,
  // a process); otherwise unbinds it.
  Status Release();

  // Lets go of the device without unbinding it (a restart of fused hands it
  // to the next one; with autoclear it goes once its last user does).
  void Abandon();

  // Re-reads the backing file's size (LOOP_SET_CAPACITY), after an expand.
  Status RefreshCapacity();

  // Creates (replacing) the symlink `link` -> path().
  Status Link(const std::string& link);

 private:
  LoopDevice(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
  std::string link_;
};

// True when `path` is a loop device whose dio flag the kernel reports as on.
bool LoopUsesDirectIo(const std::string& path);

}  // namespace shorthorn::fused
