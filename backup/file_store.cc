// Design notes
//
// Keys pass CheckObjectKey (object_key.h) before they touch a path, so a
// key cannot leave the root ("..", absolute, empty components).
//
// The root is made by the first Put, not by opening (listing a target that
// has no backups yet changes nothing). Put creates the temp file first and
// makes the parent directories only when that fails with ENOENT, so the usual Put (into an existing
// directory) costs one create, the write, two fsyncs and a rename. When directories are made, every
// directory from the root down is fsynced, including those another thread made at the same time:
// the entry of a new directory is durable before the Put that needed it returns.
//
// Temp files are "<file>.tmp.<16 hex digits>" (random, O_EXCL), so two Puts
// of one key never share a temp file; List skips names of that shape, which
// no valid key of the backup format has.
//
// Delete leaves empty directories behind: removing them would race with a
// Put that has just made them. They cost an inode each and are reused.
#include "backup/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "backup/object_key.h"
#include "common/file_util.h"

namespace shorthorn::backup {
namespace {

constexpr std::string_view kTempMarker = ".tmp.";
constexpr size_t kTempRandomDigits = 16;

std::string RandomHex() {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof(v), 0) != static_cast<ssize_t>(sizeof(v))) {
    // getrandom cannot fail for 8 bytes once the pool is ready; the fallback
    // only has to differ between concurrent callers.
    v = static_cast<uint64_t>(::getpid()) << 32 ^ reinterpret_cast<uintptr_t>(&v) ^
        static_cast<uint64_t>(::time(nullptr));
  }
  char buf[kTempRandomDigits + 1];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool IsTempName(std::string_view name) {
  size_t pos = name.rfind(kTempMarker);
  if (pos == std::string_view::npos) return false;
  std::string_view tail = name.substr(pos + kTempMarker.size());
  if (tail.size() != kTempRandomDigits) return false;
  for (char c : tail) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Unlinks a temp file unless the Put got as far as renaming it.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

class FileStore : public BackupStore {
 public:
  FileStore(std::string root, std::string url) : root_(std::move(root)), url_(std::move(url)) {}

  Status Put(const std::string& key, std::span<const uint8_t> data) override;
  Result<std::vector<uint8_t>> Get(const std::string& key) override;
  Result<bool> Exists(const std::string& key) override;
  Result<std::optional<uint64_t>> Size(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;
  const std::string& url() const override { return url_; }

 private:
  std::string What(std::string_view op, const std::string& key) const {
    return std::string(op) + " " + url_ + " key " + key;
  }
  // mkdir -p of the directories of `key` below the root, each made durable.
  Status MakeParents(const std::string& key, const std::string& what) const;
  Status Walk(const std::string& dir, const std::string& rel, const std::string& what,
              std::vector<std::string>* out) const;

  const std::string root_;
  const std::string url_;
};

Status FileStore::MakeParents(const std::string& key, const std::string& what) const {
  // The root itself (mode 0700) on the first Put; directories above it
  // that do not exist yet get 0755, as other daemons may need to pass.
  if (::mkdir(root_.c_str(), 0700) != 0) {
    if (errno == ENOENT) {
      SH_RETURN_IF_ERROR(MakeDirs(ParentDir(root_), 0755).WithContext(what));
      if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, what + ": create directory " + root_);
      }
    } else if (errno != EEXIST) {
      return ErrnoStatus(errno, what + ": create directory " + root_);
    }
  }
  SH_RETURN_IF_ERROR(SyncDirectory(ParentDir(root_)).WithContext(what));
  std::string dir = root_;
  for (size_t slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    std::string next = root_ + "/" + key.substr(0, slash);
    if (::mkdir(next.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, what + ": create directory " + next);
    }
    SH_RETURN_IF_ERROR(SyncDirectory(dir).WithContext(what));
    dir = next;
  }
  return Status::Ok();
}

namespace {

Status WriteAll(int fd, const uint8_t* p, size_t length, const std::string& what) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::write(fd, p + done, length - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Objects this large (blocks) go past the page cache: they are written once
// and not read back soon, and copying them into fresh page-cache pages cost
// more than the disk write here (a backup to ext4 on this machine kind:
// 243 MiB/s buffered). Whole 4 KiB blocks are written (the tail zero
// padded), then the file is cut to its size.
constexpr size_t kDirectMin = 64 * 1024;

// True when it wrote `data`; false (nothing written) when the file system
// refuses O_DIRECT writes, so the caller writes buffered.
Result<bool> WriteDirect(int fd, std::span<const uint8_t> data, const std::string& what) {
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) != 0) return false;
  size_t padded = (data.size() + kDirectIoAlignment - 1) / kDirectIoAlignment * kDirectIoAlignment;
  std::shared_ptr<uint8_t> buf = AllocateDirectIoBuffer(padded);
  if (buf == nullptr) return false;
  std::memcpy(buf.get(), data.data(), data.size());
  std::memset(buf.get() + data.size(), 0, padded - data.size());
  Status s = WriteAll(fd, buf.get(), padded, what);
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_DIRECT);
  if (!s.ok()) {
    if (s.sys_errno() != EINVAL) return s;
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return ErrnoStatus(errno, what);
    return false;
  }
  if (::ftruncate(fd, static_cast<off_t>(data.size())) != 0) return ErrnoStatus(errno, what);
  return true;
}

}  // namespace

Status FileStore::Put(const std::string& key, std::span<const uint8_t> data) {
  SH_RETURN_IF_ERROR(CheckObjectKey("put", url_, key));
  const std::string what = What("put", key);
  const std::string path = root_ + "/" + key;
  const std::string tmp = path + std::string(kTempMarker) + RandomHex();
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  UniqueFd fd(::open(tmp.c_str(), kFlags, 0600));
  if (!fd.valid() && errno == ENOENT) {
    SH_RETURN_IF_ERROR(MakeParents(key, what));
    fd.Reset(::open(tmp.c_str(), kFlags, 0600));
  }
  if (!fd.valid()) return ErrnoStatus(errno, what + ": create " + tmp);
  TempFileGuard guard(tmp);
  bool written = false;
  if (data.size() >= kDirectMin) {
    auto direct = WriteDirect(fd.get(), data, what + ": write " + tmp);
    if (!direct.ok()) return direct.status();
    written = *direct;
  }
  if (!written)
    SH_RETURN_IF_ERROR(WriteAll(fd.get(), data.data(), data.size(), what + ": write " + tmp));
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, what + ": fsync " + tmp);
  if (::close(fd.Release()) != 0) return ErrnoStatus(errno, what + ": close " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, what + ": rename " + tmp + " to " + path);
  }
  guard.Release();
  return SyncDirectory(ParentDir(path)).WithContext(what);
}

Result<std::vector<uint8_t>> FileStore::Get(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("get", url_, key));
  const std::string what = What("get", key);
  const std::string path = root_ + "/" + key;
  auto not_found = [&] {
    return Status(ErrorKind::kNotFound, what + ": no such object (" + path + ")", ENOENT);
  };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return not_found();
    return ErrnoStatus(errno, what + ": open " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, what + ": stat " + path);
  if (!S_ISREG(st.st_mode)) return not_found();
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  for (;;) {
    if (done == out.size()) out.resize(out.size() + 65536);  // grew since fstat
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what + ": read " + path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

Result<bool> FileStore::Exists(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("exists", url_, key));
  const std::string path = root_ + "/" + key;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus(errno, What("exists", key) + ": stat " + path);
  }
  return S_ISREG(st.st_mode);
}

Result<std::optional<uint64_t>> FileStore::Size(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("size", url_, key));
  const std::string path = root_ + "/" + key;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<uint64_t>();
    return ErrnoStatus(errno, What("size", key) + ": stat " + path);
  }
  if (!S_ISREG(st.st_mode)) return std::optional<uint64_t>();
  return std::optional<uint64_t>(static_cast<uint64_t>(st.st_size));
}

Status FileStore::Delete(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("delete", url_, key));
  const std::string what = What("delete", key);
  const std::string path = root_ + "/" + key;
  if (::unlink(path.c_str()) != 0) {
    // A directory is not an object either.
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return Status::Ok();
    return ErrnoStatus(errno, what + ": unlink " + path);
  }
  return SyncDirectory(ParentDir(path)).WithContext(what);
}

Status FileStore::Walk(const std::string& dir, const std::string& rel, const std::string& what,
                       std::vector<std::string>* out) const {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    // A missing prefix lists as empty; so does a directory deleted meanwhile.
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return ErrnoStatus(errno, what + ": open directory " + dir);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) return ErrnoStatus(errno, what + ": read directory " + dir);
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    std::string key = rel + std::string(name);
    if (type == DT_DIR) {
      SH_RETURN_IF_ERROR(Walk(dir + "/" + std::string(name), key + "/", what, out));
    } else if (type == DT_REG && !IsTempName(name)) {
      out->push_back(std::move(key));
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> FileStore::List(const std::string& prefix) {
  SH_RETURN_IF_ERROR(CheckListPrefix(url_, prefix));
  const std::string what = "list " + url_ + " prefix " + prefix;
  std::string dir = prefix.empty() ? root_ : root_ + "/" + prefix.substr(0, prefix.size() - 1);
  std::vector<std::string> keys;
  SH_RETURN_IF_ERROR(Walk(dir, prefix, what, &keys));
  return keys;
}

}  // namespace

Result<std::unique_ptr<BackupStore>> OpenFileStore(const Target& target) {
  const std::string what = "open " + target.url;
  if (target.kind != Target::Kind::kFile || target.path.empty() || target.path.front() != '/') {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": not a file:// target with an absolute path");
  }
  // A missing root is an empty store: the first Put makes it. Opening
  // (to list, say) never creates anything.
  struct stat st;
  if (::stat(target.path.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus(errno, what + ": stat " + target.path);
    return std::unique_ptr<BackupStore>(new FileStore(target.path, target.url));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(ErrorKind::kInvalidArgument, what + ": " + target.path + " is not a directory",
                  ENOTDIR);
  }
  return std::unique_ptr<BackupStore>(new FileStore(target.path, target.url));
}

}  // namespace shorthorn::backup
