// Design notes: admission (Begin) and the in-flight count share one mutex so
// that Close, SetEpoch and the layer ops can wait for "every op admitted
// before me" without a race between a check and the op's start. The I/O
// itself runs without it.
//
// Data path over the chain. A read looks the range up in the block index
// under a shared lock, takes references to the layers it names, and issues
// one pread per run (holes are zero-filled in place): a contiguous range
// held by one layer is one syscall. A write takes the range lock of its
// blocks, writes whole blocks to the head (aligned: the caller's buffer as
// is; unaligned: a bounce buffer whose edge blocks are first read from the
// chain) and updates the index after the write completed, then releases the
// range lock. So a read never sees the index name a block the head does not
// hold yet, and a merge copy (which takes the same range locks) never
// overwrites a block the engine wrote.
//
// UNMAP: replica_unmap.cc.
//
// Power-loss test mode (undo_log.h): a write records its blocks' old content
// under its range lock before the pwrite is issued, and ends that record
// when the pwrite completed; FLUSH takes the log's mark before its
// fdatasyncs and forgets, per file synced, what had ended by then.
//
// While the replica is rebuilding, its head has no parent yet: the data the
// copied chain will put under it is not here. An unaligned write would
// complete its edge blocks from zeros, and a punched hole would later let
// the copied layers show through, so unaligned writes and unmaps are
// refused (the engine aligns them) and an aligned unmap writes real zeros.
//
// A replica is failed only by a failed fdatasync: after one, the kernel may
// have dropped dirty pages, so no later flush could prove durability. Write
// errors (ENOSPC, EIO) are returned to the client, which fails the replica
// on its side; the replica itself keeps serving.
#include "replicad/core/replica.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/file_util.h"
#include "common/log.h"
#include "replicad/core/layer_file.h"
#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {
namespace {

std::string Parent(const std::string& dir) {
  auto slash = dir.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

// Joins the pieces of one op: the last piece to finish reports.
struct Joiner {
  std::atomic<int> pending{1};  // 1 for the submitter, released by Finish()
  std::mutex mu;
  Status first_error;
  std::function<void(Status)> done;
  std::vector<std::shared_ptr<void>> keep;  // layers read from

  void Fail(Status s) {
    std::lock_guard lock(mu);
    if (first_error.ok()) first_error = std::move(s);
  }
  void Finish() {
    if (pending.fetch_sub(1) != 1) return;
    Status s;
    {
      std::lock_guard lock(mu);
      s = first_error;
    }
    done(std::move(s));
  }
};

}  // namespace

Status Replica::Create(const std::string& dir, const ReplicaMeta& meta) {
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, "create directory " + dir);
  Status s;
  for (const auto& l : meta.layers) {
    if (s.ok()) s = CreateLayerFile(dir + "/" + l.file, meta.size);
  }
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

Replica::Replica(std::string dir, ReplicaMeta meta, IoEngine* engine, ReplicaOptions options)
    : dir_(std::move(dir)),
      volume_(meta.volume),
      replica_(meta.replica),
      engine_(engine),
      options_(std::move(options)),
      epoch_(meta.epoch),
      meta_(std::move(meta)),
      size_(meta_.size),
      layers_(dir_, options_.index_chunk_bits, options_.direct_writes),
      undo_(options_.power_loss_test ? std::make_unique<UndoLog>() : nullptr),
      worker_(*this),
      rebuild_(Object(), meta_.rebuilding,
               [this](const std::string& snapshot, const std::vector<LayerMeta>& copied) {
                 return LinkRebuilt(snapshot, copied);
               }) {
  rebuilding_ = meta_.rebuilding;
}

Replica::~Replica() {
  rebuild_.Stop();
  worker_.Stop();
}

uint64_t Replica::size() const {
  std::lock_guard lock(mu_);
  return size_;
}

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
  SH_RETURN_IF_ERROR(CommitLocked(std::move(updated), "set epoch of"));
  std::unique_lock lock(mu_);
  epoch_.store(epoch);
  // Ops admitted under the old epoch finish before the new owner hears back.
  idle_.wait(lock, [this] { return in_flight_ == 0; });
  return Status::Ok();
}

uint64_t Replica::generation() {
  std::lock_guard meta_lock(meta_mu_);
  return meta_.generation;
}

std::string Replica::owner() {
  std::lock_guard meta_lock(meta_mu_);
  return meta_.owner;
}

Status Replica::SetGeneration(uint64_t generation) {
  std::lock_guard meta_lock(meta_mu_);
  if (generation < meta_.generation) {
    return Status(ErrorKind::kInvalidArgument,
                  "set generation of " + Object() + ": generation " + std::to_string(generation) +
                      " is lower than the current generation " + std::to_string(meta_.generation),
                  EINVAL);
  }
  if (generation == meta_.generation) return Status::Ok();
  ReplicaMeta next = meta_;
  next.generation = generation;
  return CommitLocked(std::move(next), "set generation of");
}

Status Replica::CheckLocked(std::string_view op, uint64_t epoch) const {
  std::string what = std::string(op) + " " + Object();
  if (failed_) return Status(ErrorKind::kIoError, what + ": the replica has failed", EIO);
  if (closed_) return Status(ErrorKind::kUnavailable, what + ": the replica is closed", ESHUTDOWN);
  uint64_t current = epoch_.load();
  if (epoch != current) {
    return Status(
        ErrorKind::kStale,
        what + ": epoch " + std::to_string(epoch) + " is not the replica's current epoch (fenced)",
        ESTALE);
  }
  return Status::Ok();
}

Status Replica::Check(std::string_view op, uint64_t epoch) const {
  std::lock_guard lock(mu_);
  return CheckLocked(op, epoch);
}

Status Replica::Begin(std::string_view op, uint64_t epoch, uint64_t offset, uint64_t length) {
  std::unique_lock lock(mu_);
  if (paused_) {
    // The pause waits for the ops in flight, which may include some this
    // thread's SubmitBatch holds back.
    lock.unlock();
    SubmitBatch::Kick();
    lock.lock();
    idle_.wait(lock, [this] { return !paused_; });
  }
  SH_RETURN_IF_ERROR(CheckLocked(op, epoch));
  if (offset > size_ || length > size_ - offset) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(op) + " " + Object() + ": range " + std::to_string(offset) + "+" +
                      std::to_string(length) + " is beyond the size " + std::to_string(size_),
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
  LogError(Object() + " of volume " + volume_ + " has failed: " + cause.message());
}

void Replica::Read(uint64_t epoch, uint64_t offset, std::span<uint8_t> buf, Done done,
                   bool may_block) {
  if (Status s = Begin("read", epoch, offset, buf.size()); !s.ok()) return done(std::move(s));
  if (buf.empty()) {
    End();
    return done(Status::Ok());
  }
  uint64_t end = offset + buf.size();
  uint64_t first = offset / kSectorSize;
  uint64_t last = (end + kSectorSize - 1) / kSectorSize;
  std::vector<BlockIndex::Extent> runs;
  std::vector<LayerPtr> layers;
  layers_.Lookup(first, last - first, &runs, &layers);
  auto join = std::make_shared<Joiner>();
  join->done = [self = shared_from_this(), done = std::move(done)](Status s) {
    self->End();
    done(std::move(s));
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    uint64_t bo = std::max(offset, runs[i].block * kSectorSize);
    uint64_t be = std::min(end, (runs[i].block + runs[i].count) * kSectorSize);
    uint8_t* dst = buf.data() + (bo - offset);
    if (layers[i] == nullptr) {
      std::memset(dst, 0, be - bo);
      continue;
    }
    if (options_.inline_reads) {
      // From the page cache, without a trip through the engine's threads;
      // anything else (not cached, short, an error) goes to the engine.
      iovec iov{dst, be - bo};
      ssize_t n = ::preadv2(layers[i]->fd.get(), &iov, 1, static_cast<off_t>(bo), RWF_NOWAIT);
      if (n == static_cast<ssize_t>(be - bo)) continue;
    }
    if (may_block) {
      IoRequest request{IoOp::kRead, layers[i]->fd.get(), dst, bo, be - bo};
      if (int64_t result = RunIoBlocking(request); result < 0) {
        join->Fail(ErrnoStatus(static_cast<int>(-result),
                               "read " + Object() + ": pread " + layers[i]->file));
      }
      continue;
    }
    join->pending.fetch_add(1);
    join->keep.push_back(layers[i]);
    engine_->Submit(
        {IoOp::kRead, layers[i]->fd.get(), dst, bo, be - bo},
        [join, self = this, layer = layers[i].get()](int64_t result) {
          if (result < 0) {
            join->Fail(ErrnoStatus(static_cast<int>(-result),
                                   "read " + self->Object() + ": pread " + layer->file));
          }
          join->Finish();
        });
  }
  join->Finish();
}

Status Replica::ReadChainBlocking(uint64_t block, uint64_t count, uint8_t* out) {
  std::vector<BlockIndex::Extent> runs;
  std::vector<LayerPtr> layers;
  layers_.Lookup(block, count, &runs, &layers);
  for (size_t i = 0; i < runs.size(); ++i) {
    uint8_t* dst = out + (runs[i].block - block) * kSectorSize;
    uint64_t n = runs[i].count * kSectorSize;
    if (layers[i] == nullptr) {
      std::memset(dst, 0, n);
    } else {
      SH_RETURN_IF_ERROR(
          PreadFull(layers[i]->fd.get(), dst, n, runs[i].block * kSectorSize, layers[i]->file));
    }
  }
  return Status::Ok();
}

// Whole blocks are whole O_DIRECT units.
static_assert(kSectorSize == kDirectIoAlignment);

void Replica::SubmitWrite(uint64_t first, uint64_t blocks, bool may_block,
                          std::shared_ptr<const void> owned, const uint8_t* data,
                          std::shared_ptr<RangeLock::Guard> guard, Done done) {
  LayerPtr head = layers_.head();
  const uint64_t length = blocks * kSectorSize;
  IoRequest request{IoOp::kWrite, head->fd.get(), const_cast<uint8_t*>(data), first * kSectorSize,
                    length};
  const bool direct = head->direct_fd.valid();
  if (direct) {
    // O_DIRECT wants the buffer aligned too: the connection reader's
    // payloads are (FrameReader aligned_writes), other callers' may not be.
    if (reinterpret_cast<uintptr_t>(data) % kSectorSize != 0) {
      std::shared_ptr<uint8_t> copy = AllocateDirectIoBuffer(length);
      if (copy == nullptr) {
        guard->Release();
        End();
        return done(Status(
            ErrorKind::kUnavailable,
            "write " + Object() + ": no memory for " + std::to_string(length) + " bytes", ENOMEM));
      }
      std::memcpy(copy.get(), data, length);
      request.buf = copy.get();
      owned = std::move(copy);
    }
    request.fd = head->direct_fd.get();
  }
  uint64_t change = 0;  // test mode: the undo log's record of this write
  if (undo_ != nullptr) {
    auto id = undo_->Begin({{head->fd.get(), head->file, head, request.offset, length}});
    if (!id.ok()) {
      guard->Release();
      End();
      return done(id.status().WithContext("write " + Object()));
    }
    change = *id;
  }
  auto complete = [self = shared_from_this(), head, request, direct, change,
                   owned = std::move(owned), guard = std::move(guard),
                   done = std::move(done)](int64_t result) mutable {
    if (direct && result == -EINVAL) {
      // This file system turned the O_DIRECT write down: write it buffered.
      IoRequest buffered = request;
      buffered.fd = head->fd.get();
      result = RunIoBlocking(buffered);
    }
    Status s;
    if (result < 0) {
      s = ErrnoStatus(static_cast<int>(-result),
                      "write " + self->Object() + ": pwrite " + head->file);
    } else {
      self->layers_.SetRange(request.offset / kSectorSize, request.length / kSectorSize,
                             head->slot);
    }
    if (change != 0) self->undo_->End(change);
    guard->Release();
    self->End();
    done(std::move(s));
  };
  if (int err = options_.fail_io ? options_.fail_io("write") : 0; err != 0) {
    complete(-err);
  } else if (direct && options_.fail_io && (err = options_.fail_io("direct-write")) != 0) {
    complete(-err);
  } else if (direct ? may_block : options_.inline_writes) {
    complete(RunIoBlocking(request));
  } else {
    engine_->Submit(request, std::move(complete));
  }
}

void Replica::Write(uint64_t epoch, uint64_t offset, std::span<const uint8_t> data, Done done,
                    bool may_block) {
  if (Status s = MarkSessionDirty(); !s.ok()) return done(std::move(s));
  if (Status s = Begin("write", epoch, offset, data.size()); !s.ok()) return done(std::move(s));
  if (data.empty()) {
    End();
    return done(Status::Ok());
  }
  uint64_t end = offset + data.size();
  uint64_t first = offset / kSectorSize;
  uint64_t last = (end + kSectorSize - 1) / kSectorSize;
  bool aligned = offset % kSectorSize == 0 && end % kSectorSize == 0;
  if (!aligned && rebuilding_.load()) {
    End();
    return done(Unaligned("write", offset, data.size()));
  }
  auto guard = std::make_shared<RangeLock::Guard>(range_lock_.Lock(first, last));
  if (aligned) {
    return SubmitWrite(first, last - first, may_block, nullptr, data.data(), std::move(guard),
                       std::move(done));
  }
  // Unaligned: the head only ever gets whole blocks, so the edge blocks
  // are completed from the chain (never from a hole in the head).
  // The bounce buffer is aligned, so a direct write takes it as it is; every
  // byte of it is read from the chain or copied from `data` below.
  std::shared_ptr<uint8_t> bounce = AllocateDirectIoBuffer((last - first) * kSectorSize);
  Status s;
  if (bounce == nullptr) {
    s = Status(ErrorKind::kUnavailable,
               "no memory for " + std::to_string((last - first) * kSectorSize) + " bytes", ENOMEM);
  }
  SubmitBatch::Kick();  // the edge reads below block on the disk
  if (s.ok() && offset % kSectorSize != 0) s = ReadChainBlocking(first, 1, bounce.get());
  if (s.ok() && end % kSectorSize != 0 && (last - 1 != first || offset % kSectorSize == 0)) {
    s = ReadChainBlocking(last - 1, 1, bounce.get() + (last - 1 - first) * kSectorSize);
  }
  if (!s.ok()) {
    guard->Release();
    End();
    return done(s.WithContext("write " + Object()));
  }
  std::memcpy(bounce.get() + (offset - first * kSectorSize), data.data(), data.size());
  const uint8_t* p = bounce.get();
  SubmitWrite(first, last - first, may_block, std::move(bounce), p, std::move(guard),
              std::move(done));
}

Status Replica::Unaligned(std::string_view op, uint64_t offset, uint64_t length) const {
  return Status(ErrorKind::kInvalidArgument,
                std::string(op) + " " + Object() + ": range " + std::to_string(offset) + "+" +
                    std::to_string(length) + ": " + Object() + " is rebuilding: unaligned " +
                    std::string(op) + "s must be aligned by the engine",
                EINVAL);
}

void Replica::Flush(uint64_t epoch, Done done) {
  if (Status s = Begin("flush", epoch, 0, 0); !s.ok()) return done(std::move(s));
  // Test mode: the changes ended by now are what the fdatasyncs below make durable.
  const uint64_t mark = undo_ != nullptr ? undo_->Mark() : 0;
  // Lower layers an unmap punched since the last flush (rare: only removed
  // snapshots right under the head): synced here, on the caller's thread.
  std::vector<LayerPtr> lower;
  {
    std::lock_guard dirty(dirty_mu_);
    lower.swap(dirty_lower_);
  }
  for (const auto& l : lower) {
    std::string what = "flush " + Object() + ": fdatasync " + l->file;
    Status s = Fault("flush-layer", what);
    if (s.ok() && ::fdatasync(l->fd.get()) != 0) s = ErrnoStatus(errno, what);
    if (!s.ok()) {
      MarkFailed(s);
      End();
      return done(std::move(s));
    }
    if (undo_ != nullptr) undo_->Synced(l->fd.get(), mark);
  }
  LayerPtr head = layers_.head();
  std::string context = "flush " + Object() + ": fdatasync " + head->file;
  engine_->Submit({IoOp::kFdatasync, head->fd.get(), nullptr, 0, 0},
                  [self = shared_from_this(), head, mark, context = std::move(context),
                   done = std::move(done)](int64_t result) {
                    Status s;
                    if (result < 0) {
                      s = ErrnoStatus(static_cast<int>(-result), context);
                      self->MarkFailed(s);
                    } else if (self->undo_ != nullptr) {
                      self->undo_->Synced(head->fd.get(), mark);
                    }
                    self->End();
                    done(std::move(s));
                  });
}

Status Replica::Close() {
  rebuild_.Stop();
  worker_.Stop();
  {
    std::unique_lock lock(mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
    idle_.wait(lock, [this] { return in_flight_ == 0; });
    if (failed_) {
      return Status(ErrorKind::kIoError, "close " + Object() + ": the replica has failed", EIO);
    }
  }
  LayerPtr head = layers_.head();
  if (::fdatasync(head->fd.get()) != 0) {
    Status s = ErrnoStatus(errno, "close " + Object() + ": fdatasync " + head->file);
    MarkFailed(s);
    return s;
  }
  // Nothing is in flight any more: every change of the head ended before.
  if (undo_ != nullptr) undo_->Synced(head->fd.get(), undo_->Mark());
  return Status::Ok();
}

Result<UndoLog::Dropped> Replica::SimulatePowerLoss() {
  if (undo_ == nullptr) {
    return Status(ErrorKind::kInvalidArgument,
                  "simulate a power loss of " + Object() + ": not in power-loss test mode", EINVAL);
  }
  MarkFailed(Status(ErrorKind::kIoError, "power loss simulated (test mode)", EIO));
  rebuild_.Stop();
  worker_.Stop();
  auto dropped = undo_->PowerLoss();
  if (!dropped.ok()) return dropped.status().WithContext(Object());
  return dropped;
}

}  // namespace shorthorn::replicad
