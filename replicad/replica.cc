// Design notes: admission (Begin) and the in-flight count share one mutex so
// that Close and SetEpoch can wait for "every op admitted before me" without
// a race between a check and the op's start. The mutex is held for a few
// instructions per op; the I/O itself runs without it.
//
// A replica is failed only by a failed fdatasync: after one, the kernel may
// have dropped dirty pages, so no later flush could prove durability. Write
// errors (ENOSPC, EIO) are returned to the client, which fails the replica
// on its side; the replica itself keeps serving.
//
// Create writes replica.json last: a directory without it is a crashed
// create, which Open reports as ENOENT and Delete removes.
#include "replicad/replica.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "common/log.h"

namespace shorthorn::replicad {
namespace {

std::string Parent(const std::string& dir) {
  auto slash = dir.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

Status CreateHead(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "create " + path);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(errno, "truncate " + path);
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync " + path);
  return Status::Ok();
}

}  // namespace

Status Replica::Create(const std::string& dir, const ReplicaMeta& meta) {
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, "create directory " + dir);
  Status s = CreateHead(DataPath(dir, meta), meta.size);
  if (s.ok()) s = WriteFileAtomic(MetaPath(dir), EncodeReplicaMeta(meta));
  if (s.ok()) s = SyncDirectory(Parent(dir));
  if (!s.ok()) {
    Status cleanup = Destroy(dir);
    if (!cleanup.ok()) LogWarning(cleanup.message());
  }
  return s;
}

Status Replica::Destroy(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "open directory " + dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string path = dir + "/" + n;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "remove " + path);
    }
  }
  if (::rmdir(dir.c_str()) != 0) return ErrnoStatus(errno, "remove directory " + dir);
  return SyncDirectory(Parent(dir));
}

Result<std::shared_ptr<Replica>> Replica::Open(const std::string& dir, IoEngine* engine) {
  std::string meta_path = MetaPath(dir);
  auto text = ReadFileToString(meta_path);
  if (!text.ok()) return text.status();
  auto meta = DecodeReplicaMeta(*text, meta_path);
  if (!meta.ok()) return meta.status();
  std::string data_path = DataPath(dir, *meta);
  UniqueFd fd(::open(data_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open " + data_path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + data_path);
  if (static_cast<uint64_t>(st.st_size) != meta->size) {
    return Status(ErrorKind::kIoError,
                  "open " + data_path + ": file is " + std::to_string(st.st_size) +
                      " bytes but replica.json says " + std::to_string(meta->size),
                  EIO);
  }
  return std::shared_ptr<Replica>(new Replica(dir, std::move(*meta), std::move(fd), engine));
}

Replica::Replica(std::string dir, ReplicaMeta meta, UniqueFd fd, IoEngine* engine)
    : dir_(std::move(dir)),
      meta_(std::move(meta)),
      fd_(std::move(fd)),
      engine_(engine),
      epoch_(meta_.epoch) {}

bool Replica::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

bool Replica::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

Status Replica::SetEpoch(uint64_t epoch) {
  std::lock_guard meta_lock(meta_mu_);
  ReplicaMeta updated = meta_;
  updated.epoch = epoch;
  Status s = WriteFileAtomic(MetaPath(dir_), EncodeReplicaMeta(updated));
  if (!s.ok()) return s.WithContext("set epoch of " + Object());
  std::unique_lock lock(mu_);
  meta_.epoch = epoch;
  epoch_.store(epoch);
  // Ops admitted under the old epoch finish before the new owner hears back.
  idle_.wait(lock, [this] { return in_flight_ == 0; });
  return Status::Ok();
}

Status Replica::CheckLocked(std::string_view op, uint64_t epoch) const {
  std::string what = std::string(op) + " " + Object();
  if (failed_) return Status(ErrorKind::kIoError, what + ": the replica has failed", EIO);
  if (closed_) return Status(ErrorKind::kUnavailable, what + ": the replica is closed", ESHUTDOWN);
  uint64_t current = epoch_.load();
  if (epoch != current) {
    return Status(ErrorKind::kStale,
                  what + ": epoch " + std::to_string(epoch) + " is not the current epoch " +
                      std::to_string(current),
                  ESTALE);
  }
  return Status::Ok();
}

Status Replica::Check(std::string_view op, uint64_t epoch) const {
  std::lock_guard lock(mu_);
  return CheckLocked(op, epoch);
}

Status Replica::Begin(std::string_view op, uint64_t epoch, uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  SH_RETURN_IF_ERROR(CheckLocked(op, epoch));
  if (offset > meta_.size || length > meta_.size - offset) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(op) + " " + Object() + ": range " + std::to_string(offset) + "+" +
                      std::to_string(length) + " is beyond the size " + std::to_string(meta_.size),
                  EINVAL);
  }
  ++in_flight_;
  return Status::Ok();
}

void Replica::End() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void Replica::MarkFailed(const Status& cause) {
  {
    std::lock_guard lock(mu_);
    if (failed_) return;
    failed_ = true;
  }
  LogError(Object() + " of volume " + meta_.volume + " has failed: " + cause.message());
}

void Replica::SubmitIo(std::string_view op, std::string_view what, const IoRequest& request,
                       Done done) {
  std::string context =
      std::string(op) + " " + Object() + ": " + std::string(what) + " " + meta_.head;
  bool is_sync = request.op == IoOp::kFdatasync;
  engine_->Submit(request, [self = shared_from_this(), context = std::move(context), is_sync,
                            done = std::move(done)](int64_t result) {
    Status s;
    if (result < 0) {
      s = ErrnoStatus(static_cast<int>(-result), context);
      if (is_sync) self->MarkFailed(s);
    }
    self->End();
    done(std::move(s));
  });
}

void Replica::Read(uint64_t epoch, uint64_t offset, std::span<uint8_t> buf, Done done) {
  if (Status s = Begin("read", epoch, offset, buf.size()); !s.ok()) return done(std::move(s));
  if (buf.empty()) {
    End();
    return done(Status::Ok());
  }
  SubmitIo("read", "pread", {IoOp::kRead, fd_.get(), buf.data(), offset, buf.size()},
           std::move(done));
}

void Replica::Write(uint64_t epoch, uint64_t offset, std::span<const uint8_t> data, Done done) {
  if (Status s = Begin("write", epoch, offset, data.size()); !s.ok()) return done(std::move(s));
  if (data.empty()) {
    End();
    return done(Status::Ok());
  }
  SubmitIo("write", "pwrite",
           {IoOp::kWrite, fd_.get(), const_cast<uint8_t*>(data.data()), offset, data.size()},
           std::move(done));
}

void Replica::Unmap(uint64_t epoch, uint64_t offset, uint64_t length, Done done) {
  if (Status s = Begin("unmap", epoch, offset, length); !s.ok()) return done(std::move(s));
  if (length == 0) {
    End();
    return done(Status::Ok());
  }
  SubmitIo("unmap", "punch a hole in", {IoOp::kPunchHole, fd_.get(), nullptr, offset, length},
           std::move(done));
}

void Replica::Flush(uint64_t epoch, Done done) {
  if (Status s = Begin("flush", epoch, 0, 0); !s.ok()) return done(std::move(s));
  SubmitIo("flush", "fdatasync", {IoOp::kFdatasync, fd_.get(), nullptr, 0, 0}, std::move(done));
}

Status Replica::Close() {
  {
    std::unique_lock lock(mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
    idle_.wait(lock, [this] { return in_flight_ == 0; });
    if (failed_) {
      return Status(ErrorKind::kIoError, "close " + Object() + ": the replica has failed", EIO);
    }
  }
  if (::fdatasync(fd_.get()) != 0) {
    Status s = ErrnoStatus(errno, "close " + Object() + ": fdatasync " + meta_.head);
    MarkFailed(s);
    return s;
  }
  return Status::Ok();
}

}  // namespace shorthorn::replicad
