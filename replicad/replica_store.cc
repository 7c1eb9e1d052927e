// Design notes: the store lock is held across the fsyncs of a control call.
// That keeps create/open/close/delete of one name strictly ordered without a
// per-name lock table, at the price of serializing control calls, which are
// rare (attach, detach, rebuild). Data ops never take this lock.
#include "replicad/replica_store.h"

#include <sys/stat.h>

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

}  // namespace

ReplicaStore::ReplicaStore(std::string data_dir, IoEngine* engine, ReplicaOptions options)
    : data_dir_(std::move(data_dir)), engine_(engine), options_(std::move(options)) {}

ReplicaStore::~ReplicaStore() { CloseAll(); }

Status ReplicaStore::Create(const std::string& volume, const std::string& replica, uint64_t size,
                            bool rebuilding) {
  const std::string op = "create";
  SH_RETURN_IF_ERROR(ValidateNames(op, volume, replica));
  if (size == 0 || size % kSectorSize != 0) {
    return Status(ErrorKind::kInvalidArgument,
                  op + " replica " + replica + ": size " + std::to_string(size) +
                      " is not a positive multiple of " + std::to_string(kSectorSize),
                  EINVAL);
  }
  SH_RETURN_IF_ERROR(
      CheckMaxVolumeSize(op + " replica " + replica, size, options_.max_volume_size_gib));
  std::lock_guard lock(mu_);
  ReplicaMeta meta = NewReplicaMeta(volume, replica, size);
  meta.rebuilding = rebuilding;
  std::string dir = ReplicaDir(data_dir_, replica);
  Status s = Replica::Create(dir, meta);
  if (!s.ok()) return s.WithContext(op + " replica " + replica);
  LogInfo("created replica " + replica + " of volume " + volume + " (" + std::to_string(size) +
          " bytes" + (rebuilding ? ", to be rebuilt" : "") + ")");
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
                                                    bool* clean) {
  const std::string op = "open";
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
  if (epoch < r->epoch()) return Stale(op, replica, epoch);
  uint64_t old = r->epoch();
  auto session = r->OpenSession(epoch);
  if (!session.ok()) return session.status();
  if (epoch > old) {
    LogInfo("replica " + replica + ": epoch " + std::to_string(old) + " -> " +
            std::to_string(epoch));
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

Status ReplicaStore::Delete(const std::string& volume, const std::string& replica, uint64_t epoch) {
  const std::string op = "delete";
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
      if (meta.ok() && epoch < meta->epoch) return Stale(op, replica, epoch);
    }
  } else {
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

void ReplicaStore::CloseAll() {
  std::lock_guard lock(mu_);
  for (auto& [name, r] : open_) {
    Status s = r->Close();
    if (!s.ok()) LogError(s.message());
    if (r->failed()) failed_.insert(name);
  }
  open_.clear();
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
