// PidFile: one instance of a daemon per state directory. An exclusive
// flock on the file, held by an open descriptor for the life of the
// process (so even a SIGKILL releases it), and the holder's pid written in
// it for the next one to read. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace shorthorn {

class PidFile {
 public:
  // Takes the lock. Busy naming `path` and the owner's pid when another
  // process holds it; with `wait` > 0, waits that long for it first.
  static Result<PidFile> Lock(const std::string& path,
                              std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // The pid written by the process holding the lock at `path` (0 if none).
  static pid_t Owner(const std::string& path);

 private:
  explicit PidFile(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace shorthorn
