#include "common/pid_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

namespace shorthorn {

pid_t PidFile::Owner(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return 0;
  try {
    long pid = std::stol(*text);
    return pid > 0 ? static_cast<pid_t>(pid) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

Result<PidFile> PidFile::Lock(const std::string& path, std::chrono::milliseconds wait) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "open " + path);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoStatus(errno, "lock " + path);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(ErrorKind::kBusy, "process " + std::to_string(Owner(path)) + " holds " + path,
                    EBUSY);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Written over the old pid, then cut to length: a reader never sees an
  // empty file.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()) ||
      ::ftruncate(fd.get(), static_cast<off_t>(pid.size())) != 0) {
    return ErrnoStatus(errno, "write " + path);
  }
  return PidFile(std::move(fd));
}

}  // namespace shorthorn
