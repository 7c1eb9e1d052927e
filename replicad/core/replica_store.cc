// Design notes: the store lock is held across the fsyncs of a control call.
// That keeps create/open/close/delete of one name strictly ordered without a
// per-name lock table, at the price of serializing control calls, which are
// rare (attach, detach, rebuild). Data ops never take this lock.
#include "replicad/core/replica_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "common/file_util.h"
#include "common/log.h"
#include "common/names.h"

namespace shorthorn::replicad {
namespace {

Status Failed(const std::string& op, const std::string& replica) {
  return Status(ErrorKind::kIoError,
                op + " replica " + replica +
                    ": the replica has failed (fdatasync error); delete and rebuild it",
                EIO);
}

Status WrongVolume(const std::string& op, const std::string& replica, const std::string& volume,
                   const std::string& actual) {
  return Status(ErrorKind::kInvalidArgument,
                op + " replica " + replica + ": belongs to volume " + actual + ", not " + volume,
                EINVAL);
}

// The current epoch is not named: a client learns only that it is fenced.
Status Stale(const std::string& op, const std::string& replica, uint64_t epoch) {
  return Status(ErrorKind::kStale,
                op + " replica " + replica + ": epoch " + std::to_string(epoch) +
                    " is older than the replica's epoch (a newer engine opened it)",
                ESTALE);
}

Status ValidateNames(const std::string& op, const std::string& volume, const std::string& replica) {
  if (Status s = ValidateName("volume", volume); !s.ok()) {
    return Status(ErrorKind::kInvalidArgument, op + " replica " + replica + ": " + s.message(),
                  EINVAL);
  }
  if (Status s = ValidateName("replica", replica); !s.ok()) {
    return Status(ErrorKind::kInvalidArgument, op + " replica: " + s.message(), EINVAL);
  }
  return Status::Ok();
}

// EINVAL "<op> replica <replica>: owner ..." for a bad owner; "" is OK (none).
Status ValidateClaim(const std::string& op, const std::string& replica, const std::string& owner) {
  if (owner.empty()) return Status::Ok();
  Status s = ValidateOwner(owner);
  return s.ok() ? s : s.WithContext(op + " replica " + replica);
}

// A fused refused because its volume moved (kMoved): worth a warning here
// too, as the old host may still be running the volume.
Status LogIfMoved(Status s) {
  if (s.kind() == ErrorKind::kMoved) LogWarning(s.message());
  return s;
}

// A replica.json is a few KiB per 100 layers; anything far larger is not one.
constexpr size_t kMaxMetaFileSize = 16u << 20;

}  // namespace

ReplicaStore::ReplicaStore(std::string data_dir, IoEngine* engine, ReplicaOptions options)
    : data_dir_(std::move(data_dir)), engine_(engine), options_(std::move(options)) {}

ReplicaStore::~ReplicaStore() { CloseAll(); }

Status ReplicaStore::Create(const std::string& volume, const std::string& replica, uint64_t size,
                            bool rebuilding, const std::string& owner) {
  const std::string op = "create";
  SH_RETURN_IF_ERROR(ValidateNames(op, volume, replica));
  SH_RETURN_IF_ERROR(ValidateClaim(op, replica, owner));
  if (size == 0 || size % kSectorSize != 0) {
    return Status(ErrorKind::kInvalidArgument,
                  op + " replica " + replica + ": size " + std::to_string(size) +
                      " is not a positive multiple of " + std::to_string(kSectorSize),
                  EINVAL);
  }
  SH_RETURN_IF_ERROR(
      CheckMaxVolumeSize(op + " replica " + replica, size, options_.max_volume_size_gib));
  std::lock_guard lock(mu_);
  ReplicaMeta meta = NewReplicaMeta(volume, replica, size, owner);
  meta.rebuilding = rebuilding;
  std::string dir = ReplicaDir(data_dir_, replica);
  Status s = Replica::Create(dir, meta);
  if (!s.ok()) return s.WithContext(op + " replica " + replica);
  LogInfo("created replica " + replica + " of volume " + volume + " (" + std::to_string(size) +
          " bytes" + (rebuilding ? ", to be rebuilt" : "") +
          (owner.empty() ? "" : ", owned by fused " + owner) + ")");
  return Status::Ok();
}

Status ReplicaStore::CheckKnownLocked(const std::string& op, const std::string& volume,
                                      const std::string& replica, std::shared_ptr<Replica>* open) {
  SH_RETURN_IF_ERROR(ValidateNames(op, volume, replica));
  open->reset();
  if (auto it = open_.find(replica); it != open_.end()) {
    if (it->second->volume() != volume) {
      return WrongVolume(op, replica, volume, it->second->volume());
    }
    *open = it->second;
    return Status::Ok();
  }
  std::string dir = ReplicaDir(data_dir_, replica);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Status(ErrorKind::kNotFound, op + " replica " + replica + ": no such replica", ENOENT);
    }
    return ErrnoStatus(errno, op + " replica " + replica + ": stat " + dir);
  }
  return Status::Ok();
}

Result<std::shared_ptr<Replica>> ReplicaStore::Open(const std::string& volume,
                                                    const std::string& replica, uint64_t epoch,
                                                    bool* clean, const OwnerClaim& claim) {
  const std::string op = "open";
  SH_RETURN_IF_ERROR(ValidateClaim(op, replica, claim.owner));
  std::lock_guard lock(mu_);
  std::shared_ptr<Replica> r;
  SH_RETURN_IF_ERROR(CheckKnownLocked(op, volume, replica, &r));
  if (failed_.count(replica) != 0 || (r != nullptr && r->failed())) return Failed(op, replica);
  bool opened_now = false;
  if (r == nullptr) {
    auto opened = Replica::Open(ReplicaDir(data_dir_, replica), engine_, options_);
    if (!opened.ok()) return opened.status().WithContext(op + " replica " + replica);
    r = std::move(*opened);
    if (r->volume() != volume) return WrongVolume(op, replica, volume, r->volume());
    opened_now = true;
  }
  // OpenSession checks the owner, then the epoch (ESTALE), and persists.
  uint64_t old = r->epoch();
  std::string old_owner = r->owner();
  auto session = r->OpenSession(epoch, claim);
  if (!session.ok()) return LogIfMoved(session.status());
  if (epoch > old) {
    LogInfo("replica " + replica + ": epoch " + std::to_string(old) + " -> " +
            std::to_string(epoch));
  }
  if (r->owner() != old_owner) {
    if (old_owner.empty()) {
      LogInfo("replica " + replica + " of volume " + volume + ": owned by fused " + r->owner());
    } else {
      LogWarning("replica " + replica + " of volume " + volume + ": taken over by fused " +
                 r->owner() + " from fused " + old_owner + ", which is fenced from now on");
    }
  }
  if (opened_now && !*session) {
    LogWarning("replica " + replica + ": its last session ended without a close");
  }
  if (clean != nullptr) *clean = *session;
  if (opened_now) {
    open_[replica] = r;
    LogInfo("opened replica " + replica + " of volume " + volume + " at epoch " +
            std::to_string(epoch) + " (" + std::to_string(r->size()) + " bytes)");
  }
  return r;
}

Result<std::shared_ptr<Replica>> ReplicaStore::Find(const std::string& volume,
                                                    const std::string& replica) {
  const std::string op = "hello";
  SH_RETURN_IF_ERROR(ValidateNames(op, volume, replica));
  std::lock_guard lock(mu_);
  auto it = open_.find(replica);
  if (it == open_.end()) {
    if (failed_.count(replica) != 0) return Failed(op, replica);
    return Status(ErrorKind::kNotFound,
                  op + " replica " + replica + ": replica " + replica + " is not open", ENOENT);
  }
  if (it->second->volume() != volume) {
    return WrongVolume(op, replica, volume, it->second->volume());
  }
  return it->second;
}

Status ReplicaStore::Close(const std::string& volume, const std::string& replica, uint64_t epoch) {
  const std::string op = "close";
  std::lock_guard lock(mu_);
  std::shared_ptr<Replica> r;
  SH_RETURN_IF_ERROR(CheckKnownLocked(op, volume, replica, &r));
  if (r == nullptr) return failed_.count(replica) != 0 ? Failed(op, replica) : Status::Ok();
  if (epoch < r->epoch()) return Stale(op, replica, epoch);
  open_.erase(replica);
  Status s = r->Close();
  if (s.ok()) s = r->EndSession();
  if (r->failed()) failed_.insert(replica);
  if (s.ok()) LogInfo("closed replica " + replica + " of volume " + volume);
  return s;
}

Status ReplicaStore::Delete(const std::string& volume, const std::string& replica, uint64_t epoch,
                            const std::string& owner) {
  const std::string op = "delete";
  SH_RETURN_IF_ERROR(ValidateClaim(op, replica, owner));
  std::lock_guard lock(mu_);
  std::shared_ptr<Replica> r;
  SH_RETURN_IF_ERROR(CheckKnownLocked(op, volume, replica, &r));
  std::string dir = ReplicaDir(data_dir_, replica);
  if (r == nullptr) {
    // Not open: check the volume from replica.json when there is one (a
    // crashed create has none and is removed regardless).
    auto text = ReadFileToString(MetaPath(dir));
    if (text.ok()) {
      auto meta = DecodeReplicaMeta(*text, MetaPath(dir));
      if (meta.ok() && meta->volume != volume) {
        return WrongVolume(op, replica, volume, meta->volume);
      }
      if (meta.ok()) {
        SH_RETURN_IF_ERROR(LogIfMoved(CheckOwner(op, replica, volume, meta->owner, owner)));
      }
      if (meta.ok() && epoch < meta->epoch) return Stale(op, replica, epoch);
    }
  } else {
    SH_RETURN_IF_ERROR(LogIfMoved(CheckOwner(op, replica, volume, r->owner(), owner)));
    if (epoch < r->epoch()) return Stale(op, replica, epoch);
    open_.erase(replica);
    Status closed = r->Close();  // a failed close does not stop the delete
    if (!closed.ok()) LogWarning(closed.message());
  }
  failed_.erase(replica);
  Status s = Replica::Destroy(dir);
  if (!s.ok()) return s.WithContext(op + " replica " + replica);
  LogInfo("deleted replica " + replica + " of volume " + volume);
  return Status::Ok();
}

Result<std::vector<ReplicaMeta>> ReplicaStore::ReadAllMetaLocked(const std::string& op, bool warn) {
  DIR* d = ::opendir(data_dir_.c_str());
  if (d == nullptr) return ErrnoStatus(errno, op + ": open directory " + data_dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    // Anything the store cannot have made ("lost+found", temp files) is no replica.
    if (ValidateName("replica", e->d_name).ok()) names.push_back(e->d_name);
  }
  std::sort(names.begin(), names.end());
  std::vector<ReplicaMeta> out;
  const int data_fd = ::dirfd(d);
  for (const auto& name : names) {
    const std::string dir = ReplicaDir(data_dir_, name);
    auto skip = [&](const std::string& why) {
      const std::string message = op + ": skipping " + dir + ": " + why;
      warn ? LogWarning(message) : LogDebug(message);
    };
    struct stat st {};
    if (::fstatat(data_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      if (S_ISLNK(st.st_mode)) skip("a symbolic link");
      continue;
    }
    UniqueFd replica_fd(
        ::openat(data_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!replica_fd.valid()) {
      skip(ErrnoStatus(errno, "open").message());
      continue;
    }
    const std::string path = MetaPath(dir);
    auto text = ReadFileAt(replica_fd.get(), std::string(kMetaFileName), kMaxMetaFileSize, path);
    if (!text.ok()) {
      skip(text.status().message() +
           (text.status().kind() == ErrorKind::kNotFound ? " (an unfinished create)" : ""));
      continue;
    }
    auto meta = DecodeReplicaMeta(*text, path);
    if (!meta.ok()) {
      skip(meta.status().message());
      continue;
    }
    if (meta->replica != name) {
      skip("its replica.json names replica " + meta->replica);
      continue;
    }
    out.push_back(std::move(*meta));
  }
  ::closedir(d);
  return out;
}

Result<std::vector<ReplicaMeta>> ReplicaStore::List(const std::string& volume) {
  if (Status s = ValidateName("volume", volume); !s.ok()) {
    return Status(ErrorKind::kInvalidArgument, "list replicas: " + s.message(), EINVAL);
  }
  std::lock_guard lock(mu_);
  auto all = ReadAllMetaLocked("list replicas of volume " + volume, true);
  if (!all.ok()) return all.status();
  std::vector<ReplicaMeta> out;
  for (auto& meta : *all) {
    if (meta.volume == volume) out.push_back(std::move(meta));
  }
  return out;
}

Result<StoreUsage> ReplicaStore::Usage() {
  const std::string op = "replicad info";
  StoreUsage usage;
  struct statvfs fs {};
  if (::statvfs(data_dir_.c_str(), &fs) != 0) {
    return ErrnoStatus(errno, op + ": statvfs " + data_dir_);
  }
  usage.total_bytes = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  // f_bavail <= f_blocks on every sane file system; a peer must never see
  // more free than total (fused refuses such a reply).
  usage.free_bytes =
      std::min<uint64_t>(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize, usage.total_bytes);
  // Replicas that LIST_REPLICAS would skip are not counted; they are
  // logged at debug level only: fused asks this often.
  std::lock_guard lock(mu_);
  auto all = ReadAllMetaLocked(op, false);
  if (!all.ok()) return all.status();
  usage.replicas = all->size();
  for (const auto& meta : *all) usage.provisioned_bytes += meta.size;
  return usage;
}

void ReplicaStore::CloseAll() {
  std::lock_guard lock(mu_);
  for (auto& [name, r] : open_) {
    Status s = r->Close();
    if (!s.ok()) LogError(s.message());
    if (r->failed()) failed_.insert(name);
  }
  open_.clear();
}

std::vector<ReplicaFigures> ReplicaStore::Figures() {
  std::vector<std::shared_ptr<Replica>> open;
  {
    std::lock_guard lock(mu_);
    open.reserve(open_.size());
    for (const auto& [name, r] : open_) open.push_back(r);
  }
  std::vector<ReplicaFigures> out;
  out.reserve(open.size());
  for (const auto& r : open) {
    ReplicaFigures f;
    f.name = r->name();
    f.volume = r->volume();
    f.size = r->size();
    f.epoch = r->epoch();
    f.generation = r->generation();
    for (size_t op = 0; op < kReplicaIoOps; ++op) {
      f.io[op] = r->io_stats().Get(static_cast<ReplicaIoOp>(op));
    }
    out.push_back(std::move(f));
  }
  return out;
}

void ReplicaStore::SimulatePowerLoss() {
  std::lock_guard lock(mu_);
  for (auto& [name, r] : open_) {
    auto dropped = r->SimulatePowerLoss();
    if (!dropped.ok()) {
      LogError("power loss simulation failed: " + dropped.status().message());
      continue;
    }
    LogWarning("power loss simulated: replica " + name + ": dropped " +
               std::to_string(dropped->changes) + " changes (" + std::to_string(dropped->bytes) +
               " bytes)");
  }
}

}  // namespace shorthorn::replicad
