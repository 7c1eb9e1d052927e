// Design notes: LOOP_CTL_GET_FREE and LOOP_CONFIGURE are not atomic together
// (another process may take the same device in between), so a configure that
// fails with EBUSY retries with the next free device. Busy detection opens
// the device with O_EXCL, which the kernel refuses while a file system is
// mounted on it or another exclusive opener holds it.
#include "fused/loop/loop_device.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace shorthorn::fused {

Result<LoopDevice> LoopDevice::Attach(const std::string& backing_file, uint32_t block_size) {
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control.valid()) return ErrnoStatus(errno, "open /dev/loop-control");
  UniqueFd backing(::open(backing_file.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT));
  if (!backing.valid()) return ErrnoStatus(errno, "open " + backing_file + " for the loop device");
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return ErrnoStatus(errno, "find a free loop device");
    std::string path = "/dev/loop" + std::to_string(n);
    UniqueFd dev(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!dev.valid()) return ErrnoStatus(errno, "open " + path);
    loop_config cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.fd = static_cast<uint32_t>(backing.get());
    cfg.block_size = block_size;
    cfg.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), backing_file.c_str(),
                 LO_NAME_SIZE - 1);
    if (::ioctl(dev.get(), LOOP_CONFIGURE, &cfg) != 0) {
      if (errno == EBUSY) continue;
      return ErrnoStatus(errno, "configure " + path + " on " + backing_file);
    }
    if (!LoopUsesDirectIo(path)) {
      LogWarning(path + ": the kernel did not enable direct I/O on " + backing_file);
    }
    return LoopDevice(path, std::move(dev));
  }
  return Status(ErrorKind::kBusy, "find a free loop device: every candidate was taken");
}

Result<LoopDevice> LoopDevice::Adopt(const std::string& backing_file) {
  if (DIR* dir = ::opendir("/sys/block")) {
    std::string found;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name.rfind("loop", 0) != 0) continue;
      auto back = ReadFileToString("/sys/block/" + name + "/loop/backing_file");
      if (!back.ok()) continue;
      while (!back->empty() && back->back() == '\n') back->pop_back();
      if (*back == backing_file) {
        found = "/dev/" + name;
        break;
      }
    }
    ::closedir(dir);
    if (!found.empty()) {
      UniqueFd dev(::open(found.c_str(), O_RDWR | O_CLOEXEC));
      if (!dev.valid()) return ErrnoStatus(errno, "open " + found);
      return LoopDevice(found, std::move(dev));
    }
  }
  return Status(ErrorKind::kNotFound, "no loop device is bound to " + backing_file);
}

void LoopDevice::Abandon() {
  fd_.Reset();
  link_.clear();
}

bool LoopUsesDirectIo(const std::string& path) {
  std::string name = path.substr(path.rfind('/') + 1);
  auto dio = ReadFileToString("/sys/block/" + name + "/loop/dio");
  return dio.ok() && !dio->empty() && (*dio)[0] == '1';
}

Status LoopDevice::Link(const std::string& link) {
  std::string dir = link.substr(0, link.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "create " + dir);
  }
  ::unlink(link.c_str());
  if (::symlink(path_.c_str(), link.c_str()) != 0) {
    return ErrnoStatus(errno, "create symlink " + link);
  }
  link_ = link;
  return Status::Ok();
}

Status LoopDevice::RefreshCapacity() {
  if (::ioctl(fd_.get(), LOOP_SET_CAPACITY, 0) != 0) {
    return ErrnoStatus(errno, "refresh the capacity of " + path_);
  }
  return Status::Ok();
}

Status LoopDevice::Release() {
  if (!fd_.valid()) return Status::Ok();
  UniqueFd probe(::open(path_.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
  if (!probe.valid()) {
    if (errno == EBUSY) {
      return Status(ErrorKind::kBusy, path_ + " is in use (a mounted file system or an open file)",
                    EBUSY);
    }
    return ErrnoStatus(errno, "open " + path_);
  }
  probe.Reset();
  if (::ioctl(fd_.get(), LOOP_CLR_FD) != 0 && errno != ENXIO) {
    return ErrnoStatus(errno, "release " + path_);
  }
  fd_.Reset();
  if (!link_.empty()) {
    ::unlink(link_.c_str());
    link_.clear();
  }
  return Status::Ok();
}

LoopDevice::~LoopDevice() {
  if (fd_.valid()) {
    Status s = Release();
    if (!s.ok()) LogWarning("release loop device: " + s.message());
  }
  if (!link_.empty()) ::unlink(link_.c_str());
}

}  // namespace shorthorn::fused
